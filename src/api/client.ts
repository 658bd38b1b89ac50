// Admin API client used by the CLI.
import http from 'node:http';
import { codes, XdError, type XdErrorCode } from '../errors';

export async function apiRequest(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 30000,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath,
        method,
        path,
        timeout: timeoutMs,
        headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    // A POST the daemon received may still be carried out after we stop waiting: say so.
    req.on('timeout', () =>
      req.destroy(
        new Error(
          `no answer within ${timeoutMs} ms${method === 'POST' ? ' (the daemon may still be carrying out the request: see `xdirector status`)' : ''}`,
        ),
      ),
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      const hint =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? ': is `xdirector run` running for this instance?'
          : err.code === 'EACCES' || err.code === 'EPERM'
            ? ": the admin socket is root's: run as root (CAP_NET_ADMIN, CAP_BPF)"
            : '';
      reject(
        new XdError('XD_ERR_API', `cannot reach xdirector at ${socketPath}: ${err.message}${hint}`, { cause: err }),
      );
    });
    if (data) req.write(data);
    req.end();
  });
}

function isXdErrorCode(c: unknown): c is XdErrorCode {
  return typeof c === 'string' && Object.prototype.hasOwnProperty.call(codes, c);
}

/** The daemon's error answer: { error: { code, message } }. */
function errorOf(body: unknown): { code?: unknown; message?: unknown } {
  if (typeof body !== 'object' || body === null) return {};
  const e = (body as { error?: unknown }).error;
  return typeof e === 'object' && e !== null ? (e as { code?: unknown; message?: unknown }) : {};
}

/**
 * JSON call; a non-2xx answer becomes an XdError carrying the daemon's code (XD_ERR_API when
 * it is not one of ours) and message. `T` is what the endpoint answers (the daemon and this
 * client are one build).
 */
export async function apiCall<T>(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs?: number,
): Promise<T> {
  const r = await apiRequest(socketPath, method, path, body, timeoutMs);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.text);
  } catch {
    throw new XdError(
      'XD_ERR_API',
      `xdirector at ${socketPath} answered ${r.status} with non-JSON: ${r.text.slice(0, 200)}`,
    );
  }
  if (r.status >= 300) {
    const e = errorOf(parsed);
    throw new XdError(
      isXdErrorCode(e.code) ? e.code : 'XD_ERR_API',
      typeof e.message === 'string' ? e.message : `HTTP ${r.status}`,
    );
  }
  return parsed as T;
}
