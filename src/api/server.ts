// Admin API: HTTP/1.1 with JSON bodies over a unix socket (root-only: the
// socket is 0600 in a 0700 directory). Served by `xdirector run`; the CLI
// (`status`, `drain`, `undrain`, `maint`, `unmaint`, `weight`, `dataplane`, `reload`) and Prometheus (via a
// local scraper or `xdirector metrics`) talk to it.
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { XdError } from '../errors';
import type { DaemonStatus } from '../daemon/status';

/** The answer of every command endpoint. */
export interface ApiMessage {
  message: string;
}

export interface ApiHandlers {
  status(): Promise<DaemonStatus>;
  metrics(): Promise<string>;
  /** BACKEND (every service) or SERVICE/BACKEND. */
  drain(target: string): Promise<ApiMessage>;
  undrain(target: string): Promise<ApiMessage>;
  /** Maintenance: no new flows and established flows end. */
  maint(target: string): Promise<ApiMessage>;
  unmaint(target: string): Promise<ApiMessage>;
  /** Run-time weight; null returns to the config's. */
  weight(target: string, weight: number | null): Promise<ApiMessage>;
  /** Withdraw (true) or re-announce (false) every BGP VIP of this director. */
  drainDirector(on: boolean): Promise<ApiMessage>;
  dataplane(kind: string): Promise<ApiMessage>;
  reload(): Promise<ApiMessage>;
  stop(opts: { detach: boolean }): Promise<ApiMessage>;
}

type Route = (body: Record<string, unknown>) => Promise<{ status?: number; json?: unknown; text?: string }>;

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '')
    throw new XdError('XD_ERR_USAGE', `request body needs "${key}" (a non-empty string)`);
  return v;
}

/** "weight": an integer (range-checked by the daemon, with the config's rule) or null (reset). */
function weightOf(body: Record<string, unknown>): number | null {
  const v = body.weight;
  if (v === null) return null;
  if (typeof v !== 'number')
    throw new XdError(
      'XD_ERR_USAGE',
      'request body needs "weight" (an integer, or null to return to the config\'s weight)',
    );
  return v;
}

/** Refuse to start when another daemon already answers on the socket; remove a stale socket file. */
async function claimSocket(socketPath: string): Promise<void> {
  if (!fs.existsSync(socketPath)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) {
    throw new XdError(
      'XD_ERR_API',
      `another xdirector is already serving ${socketPath}: stop it first, or give this instance another admin.socket`,
    );
  }
  fs.unlinkSync(socketPath);
}

export async function startApiServer(
  socketPath: string,
  h: ApiHandlers,
  log: Logger,
): Promise<{ close(): Promise<void> }> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  await claimSocket(socketPath);
  const routes: Record<string, Route> = {
    'GET /status': async () => ({ json: await h.status() }),
    'GET /metrics': async () => ({ text: await h.metrics() }),
    'POST /drain': async (b) => ({ json: await h.drain(str(b, 'backend')) }),
    'POST /undrain': async (b) => ({ json: await h.undrain(str(b, 'backend')) }),
    'POST /maint': async (b) => ({ json: await h.maint(str(b, 'backend')) }),
    'POST /unmaint': async (b) => ({ json: await h.unmaint(str(b, 'backend')) }),
    'POST /weight': async (b) => ({ json: await h.weight(str(b, 'backend'), weightOf(b)) }),
    'POST /drain-director': async (b) => ({ json: await h.drainDirector(b.on === true) }),
    'POST /dataplane': async (b) => ({ json: await h.dataplane(str(b, 'kind')) }),
    'POST /reload': async () => ({ json: await h.reload() }),
    'POST /stop': async (b) => ({ json: await h.stop({ detach: b.detach === true }) }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const route = routes[`${req.method} ${(req.url ?? '').split('?')[0]}`];
      const reply = (status: number, body: unknown, type = 'application/json') => {
        const text = type === 'application/json' ? JSON.stringify(body) : String(body);
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (!route)
        return reply(404, {
          error: { code: 'XD_ERR_USAGE', message: `no such admin endpoint: ${req.method} ${req.url}` },
        });
      let body: Record<string, unknown> = {};
      try {
        if (chunks.length) {
          const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
          body = parsed as Record<string, unknown>;
        }
      } catch {
        return reply(400, { error: { code: 'XD_ERR_USAGE', message: 'request body is not a JSON object' } });
      }
      route(body).then(
        (r) =>
          r.text !== undefined
            ? reply(r.status ?? 200, r.text, 'text/plain; version=0.0.4')
            : reply(r.status ?? 200, r.json),
        (err: unknown) => {
          // XdError codes, or a system error's own code (EPERM, ...) from below.
          const own = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
          const code = typeof own === 'string' ? own : 'XD_ERR_API';
          const status =
            code === 'XD_ERR_NOT_FOUND' ? 404 : code === 'XD_ERR_USAGE' || code.startsWith('XD_ERR_CONFIG') ? 400 : 500;
          if (status === 500) log.error({ err }, `admin ${req.method} ${req.url} failed`);
          reply(status, { error: { code, message: err instanceof Error ? err.message : String(err) } });
        },
      );
    });
  });
  const oldMask = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(socketPath, 0o600);
  log.info({ socket: socketPath }, 'admin API listening');
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
        try {
          fs.unlinkSync(socketPath);
        } catch {
          /* already gone */
        }
      }),
  };
}
