// Optional HTTP listener (admin.http, off by default): GET /metrics (Prometheus text), GET / (the
// status page), GET /status (JSON). Read-only unless admin.http_token_file is set; then
// POST /drain, /undrain, /weight need "Authorization: Bearer <token>" (compared in constant time).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { Logger } from 'pino';
import { XdError } from '../errors';
import type { DaemonStatus } from '../daemon/status';
import { ratesOf, renderStatusPage } from './statuspage';

export interface HttpHandlers {
  status(): Promise<DaemonStatus>;
  metrics(): Promise<string>;
  drain(backend: string): Promise<unknown>;
  undrain(backend: string): Promise<unknown>;
  /** Run-time weight; null returns to the config's. */
  weight(backend: string, weight: number | null): Promise<unknown>;
}

export interface HttpListener {
  port: number;
  close(): Promise<void>;
}

function readToken(file: string): string {
  let t: string;
  try {
    t = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new XdError('XD_ERR_API', `admin.http_token_file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (t.length < 16) throw new XdError('XD_ERR_API', `admin.http_token_file ${file}: the token must be at least 16 characters (e.g. openssl rand -hex 24 > ${file})`);
  return t;
}

export async function startHttpListener(o: { host: string; port: number; tokenFile?: string }, h: HttpHandlers, log: Logger): Promise<HttpListener> {
  const token = o.tokenFile ? readToken(o.tokenFile) : undefined;
  const authorized = (req: http.IncomingMessage) => {
    if (!token) return false;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const a = crypto.createHash('sha256').update(m[1]!).digest();
    const b = crypto.createHash('sha256').update(token).digest();
    return crypto.timingSafeEqual(a, b);
  };
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const json = (status: number, v: unknown) => send(status, 'application/json', JSON.stringify(v));
    const fail = (err: unknown) => {
      const e = err as XdError;
      const status = e.code === 'XD_ERR_NOT_FOUND' ? 404 : e.code === 'XD_ERR_USAGE' ? 400 : 500;
      if (status === 500) log.error({ err }, `http ${req.method} ${url} failed`);
      json(status, { error: { code: e.code ?? 'XD_ERR_API', message: e.message } });
    };
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (url === '/metrics') return void h.metrics().then((t) => send(200, 'text/plain; version=0.0.4; charset=utf-8', t), fail);
      if (url === '/status') return void h.status().then((st) => json(200, st), fail);
      if (url === '/') {
        return void h.status().then((st) => send(200, 'text/html; charset=utf-8', renderStatusPage(st, ratesOf(st), { readOnly: !token })), fail);
      }
      return json(404, { error: { code: 'XD_ERR_NOT_FOUND', message: `no such page: ${url} (/, /status, /metrics)` } });
    }
    if (req.method !== 'POST' || !['/drain', '/undrain', '/weight'].includes(url)) return json(404, { error: { code: 'XD_ERR_NOT_FOUND', message: `no such endpoint: ${req.method} ${url}` } });
    if (!token) return json(403, { error: { code: 'XD_ERR_API', message: 'this listener is read-only: set admin.http_token_file to allow changes' } });
    if (!authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer');
      return json(401, { error: { code: 'XD_ERR_API', message: 'missing or wrong token (Authorization: Bearer <token>)' } });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= 4096) chunks.push(c); });
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        return json(400, { error: { code: 'XD_ERR_USAGE', message: 'request body is not JSON' } });
      }
      const backend = body.backend;
      if (typeof backend !== 'string' || !backend) return json(400, { error: { code: 'XD_ERR_USAGE', message: 'request body needs "backend" (NAME, address:port or SERVICE/BACKEND)' } });
      let p: Promise<unknown>;
      if (url === '/weight') {
        const w = body.weight;
        // The range is the daemon's to check (the config's weight rule, one message for every way in).
        if (w !== null && typeof w !== 'number') return json(400, { error: { code: 'XD_ERR_USAGE', message: '"weight" must be an integer (or null to return to the config\'s weight)' } });
        p = h.weight(backend, w);
      } else p = url === '/drain' ? h.drain(backend) : h.undrain(backend);
      log.info({ endpoint: url, backend, remote: req.socket.remoteAddress }, 'change over HTTP');
      p.then((r) => json(200, r), fail);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new XdError('XD_ERR_API', `admin.http ${o.host}:${o.port}: ${(err as Error).message}`, { cause: err })));
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  log.info({ host: o.host, port, readOnly: !token }, 'HTTP status page and metrics listening');
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}
