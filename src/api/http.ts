// Optional HTTP listener (admin.http, off by default): GET /metrics (Prometheus text), GET / (the
// status page), GET /status (JSON). Read-only unless admin.http_token_file is set; then
// POST /drain, /undrain, /weight need "Authorization: Bearer <token>" (compared in constant time).
//
// Reads (/, /status, /metrics: the whole topology) follow one rule: open on a loopback bind unless
// admin.http_read_token_file is set; otherwise they need the read token or the write token (Bearer,
// or HTTP Basic with the token as the password, so a browser can open the status page). On a
// loopback bind the Host header must name the listener (its address, localhost or one of
// admin.http_host_names), else 421: a page on another site cannot reach it by DNS rebinding.
// Bodies are limited to 4 KiB (413 without reading on), and slow or idle clients are cut off
// (HTTP_LIMITS).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { Logger } from 'pino';
import { XdError } from '../errors';
import { hostPort } from '../net/inet';
import type { ApiHandlers } from './server';
import { ratesOf, renderStatusPage } from './statuspage';
import { isLoopbackHost } from '../config';
import { MIN_TOKEN_LENGTH } from '../config';

/** The changes HTTP allows (with the write token). */
type HttpChange = 'drain' | 'undrain' | 'weight';

/**
 * What HTTP serves of the admin API's handler table (server.ts ApiHandlers): the daemon passes
 * its one table (api/admin.ts); HTTP reads status and metrics and makes these changes, whose
 * answer it sends back as JSON whatever its shape.
 */
export type HttpHandlers = Pick<ApiHandlers, 'status' | 'metrics'> & {
  [K in HttpChange]: (...args: Parameters<ApiHandlers[K]>) => Promise<unknown>;
};

export interface HttpListener {
  port: number;
  close(): Promise<void>;
}

/** How long a client may take and how many may be connected at once (a status listener needs few). */
export const HTTP_LIMITS = {
  /** The request's headers must arrive within this (slowloris). */
  headersTimeoutMs: 10_000,
  /** The whole request must arrive within this. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** Connections past this are refused (closed at once). */
  maxConnections: 64,
  /** Request bodies (POST) past this are answered 413 and not read. */
  maxBodyBytes: 4096,
};
export type HttpLimits = typeof HTTP_LIMITS;

function readToken(file: string, key: string): string {
  let t: string;
  try {
    t = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new XdError('XD_ERR_API', `admin.${key} ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (t.length < MIN_TOKEN_LENGTH)
    throw new XdError(
      'XD_ERR_API',
      `admin.${key} ${file}: the token must be at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 24 > ${file})`,
    );
  return t;
}

type Page = (h: HttpHandlers, readOnly: boolean) => Promise<[type: string, body: string]>;
type Change = (h: HttpHandlers, backend: string, body: Record<string, unknown>) => Promise<unknown>;

/** The pages (GET, HEAD): content type and body. A Map, so that no path reaches Object's own members. */
const PAGES = new Map<string, Page>([
  ['/metrics', async (h) => ['text/plain; version=0.0.4; charset=utf-8', await h.metrics()]],
  ['/status', async (h) => ['application/json', JSON.stringify(await h.status())]],
  [
    '/',
    async (h, readOnly) => {
      const st = await h.status();
      return ['text/html; charset=utf-8', renderStatusPage(st, ratesOf(st), { readOnly })];
    },
  ],
]);

/** The changes (POST, write token), each on the body's "backend"; a bad body throws XD_ERR_USAGE. */
const CHANGES = new Map<string, Change>([
  ['/drain', (h, backend) => h.drain(backend)],
  ['/undrain', (h, backend) => h.undrain(backend)],
  [
    '/weight',
    (h, backend, body) => {
      const w = body.weight;
      // The range is the daemon's to check (the config's weight rule, one message for every way in).
      if (w !== null && typeof w !== 'number')
        throw new XdError('XD_ERR_USAGE', '"weight" must be an integer (or null to return to the config\'s weight)');
      return h.weight(backend, w);
    },
  ],
]);

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/** The token a request presents: "Bearer <token>", or HTTP Basic with the token as the password. */
function presented(req: http.IncomingMessage): string | undefined {
  const h = req.headers.authorization ?? '';
  const bearer = /^Bearer (.+)$/.exec(h);
  if (bearer) return bearer[1]!;
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(h);
  if (!basic) return undefined;
  const text = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : text.slice(i + 1);
}

/** The Host header's name without its port ("[::1]:9105" → "::1"), lower case. */
function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(header.trim());
  return m ? (m[1] ?? m[2])!.toLowerCase() : undefined;
}

export interface HttpListenerOptions {
  host: string;
  port: number;
  /** Write token (changes); it also reads. */
  tokenFile?: string;
  /** Read token (/, /status, /metrics). */
  readTokenFile?: string;
  /** Host names a loopback listener answers to besides its address and localhost. */
  hostNames?: string[];
  /** Tests shorten these; the daemon uses HTTP_LIMITS. */
  limits?: Partial<HttpLimits>;
}

/**
 * Reads a request body of at most `max` bytes, then calls `done` with it. Past `max` (declared in
 * Content-Length, or as it arrives) it calls `tooLarge` once and neither keeps nor answers the rest.
 */
function readBody(req: http.IncomingMessage, max: number, tooLarge: () => void, done: (body: Buffer) => void): void {
  if (Number(req.headers['content-length'] ?? 0) > max) return tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on('data', (c: Buffer) => {
    if (refused) return;
    size += c.length;
    if (size > max) {
      refused = true;
      return tooLarge();
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (!refused) done(Buffer.concat(chunks));
  });
}

export async function startHttpListener(o: HttpListenerOptions, h: HttpHandlers, log: Logger): Promise<HttpListener> {
  const token = o.tokenFile ? readToken(o.tokenFile, 'http_token_file') : undefined;
  const readToken_ = o.readTokenFile ? readToken(o.readTokenFile, 'http_read_token_file') : undefined;
  const limits: HttpLimits = { ...HTTP_LIMITS, ...o.limits };
  const loopback = isLoopbackHost(o.host);
  // A non-loopback bind with no token is refused by check-config; refuse it here too (a config
  // built some other way must not open the topology to the network).
  if (!loopback && !token && !readToken_) {
    throw new XdError(
      'XD_ERR_API',
      `admin.http ${o.host}:${o.port}: a listener other hosts can reach needs a token: set admin.http_read_token_file or admin.http_token_file, or bind 127.0.0.1`,
    );
  }
  const readsOpen = loopback && !readToken_;
  // The bind address, localhost (and, on a localhost bind, what it resolves to) and the configured names.
  const allowedHosts = new Set([
    'localhost',
    o.host.toLowerCase(),
    ...(o.host === 'localhost' ? ['127.0.0.1', '::1'] : []),
    ...(o.hostNames ?? []).map((n) => n.toLowerCase()),
  ]);
  const matches = (req: http.IncomingMessage, ...tokens: (string | undefined)[]) => {
    const t = presented(req);
    if (t === undefined) return false;
    const a = digest(t);
    // Every configured token is compared (constant time each), whichever matches.
    return tokens
      .filter((x): x is string => x !== undefined)
      .map((x) => crypto.timingSafeEqual(a, digest(x)))
      .includes(true);
  };
  const server = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this interval (default 30 s): a slow client is cut off within a second of them.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    (req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      const send = (status: number, type: string, body: string, extra: Record<string, string> = {}) => {
        res.writeHead(status, {
          'content-type': type,
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
          ...extra,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      const json = (status: number, v: unknown, extra: Record<string, string> = {}) =>
        send(status, 'application/json', JSON.stringify(v), extra);
      const fail = (err: unknown) => {
        const e = err as XdError;
        const status = e.code === 'XD_ERR_NOT_FOUND' ? 404 : e.code === 'XD_ERR_USAGE' ? 400 : 500;
        if (status === 500) log.error({ err }, `http ${req.method} ${url} failed`);
        json(status, { error: { code: e.code ?? 'XD_ERR_API', message: e.message } });
      };
      if (loopback && !allowedHosts.has(hostOf(req.headers.host) ?? '')) {
        // DNS rebinding: a browser sends the attacker's name as Host.
        return json(
          421,
          {
            error: {
              code: 'XD_ERR_API',
              message: `Host ${JSON.stringify(req.headers.host ?? '')} is not this listener: use ${hostPort(o.host, o.port)} or localhost, or add the name to admin.http_host_names`,
            },
          },
          { connection: 'close' },
        );
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        const page = PAGES.get(url!);
        if (!page)
          return json(404, {
            error: { code: 'XD_ERR_NOT_FOUND', message: `no such page: ${url} (/, /status, /metrics)` },
          });
        if (!readsOpen && !matches(req, readToken_, token)) {
          return json(
            401,
            {
              error: {
                code: 'XD_ERR_API',
                message:
                  'reading needs a token: Authorization: Bearer <token> (admin.http_read_token_file or admin.http_token_file), or HTTP Basic with the token as the password',
              },
            },
            { 'www-authenticate': 'Bearer, Basic realm="xdirector"' },
          );
        }
        return void page(h, !token).then(([type, body]) => send(200, type, body), fail);
      }
      const change = CHANGES.get(url!);
      if (req.method !== 'POST' || !change)
        return json(404, { error: { code: 'XD_ERR_NOT_FOUND', message: `no such endpoint: ${req.method} ${url}` } });
      if (!token)
        return json(403, {
          error: {
            code: 'XD_ERR_API',
            message: 'this listener is read-only: set admin.http_token_file to allow changes',
          },
        });
      if (!matches(req, token)) {
        return json(
          401,
          { error: { code: 'XD_ERR_API', message: 'missing or wrong token (Authorization: Bearer <token>)' } },
          { 'www-authenticate': 'Bearer' },
        );
      }
      const tooLarge = () => {
        // Answer and close: the rest of the body is not read.
        // Node would otherwise read (and discard) the rest after the response: stop reading the
        // socket once the answer is out, and close it after a grace for the client to read the 413.
        res.once('finish', () => {
          req.socket.pause();
          req.socket.end();
          setTimeout(() => req.socket.destroy(), 1000).unref();
        });
        json(
          413,
          {
            error: {
              code: 'XD_ERR_USAGE',
              message: `request body over ${limits.maxBodyBytes} bytes: send at most ${limits.maxBodyBytes}`,
            },
          },
          { connection: 'close' },
        );
      };
      readBody(req, limits.maxBodyBytes, tooLarge, (raw) => {
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(raw.toString('utf8') || '{}');
        } catch {
          return json(400, { error: { code: 'XD_ERR_USAGE', message: 'request body is not JSON' } });
        }
        const backend = body.backend;
        if (typeof backend !== 'string' || !backend)
          return json(400, {
            error: {
              code: 'XD_ERR_USAGE',
              message: 'request body needs "backend" (NAME, address:port or SERVICE/BACKEND)',
            },
          });
        let p: Promise<unknown>;
        try {
          p = change(h, backend, body);
        } catch (err) {
          return fail(err);
        }
        log.info({ endpoint: url, backend, remote: req.socket.remoteAddress }, 'change over HTTP');
        p.then((r) => json(200, r), fail);
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  // An idle socket (no request in progress) is closed after the request timeout as well.
  server.timeout = limits.requestTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new XdError('XD_ERR_API', `admin.http ${o.host}:${o.port}: ${(err as Error).message}`, { cause: err })),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  log.info(
    { host: o.host, port, readOnly: !token, readsNeedToken: !readsOpen },
    'HTTP status page and metrics listening',
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
