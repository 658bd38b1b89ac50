// The daemon's admin endpoints from one handler table: the unix socket (server.ts) answers all of
// it; the optional HTTP listener (http.ts, admin.http) exposes its subset (reads, drain, undrain,
// weight) of the same table, so an action taken over HTTP runs the very code the socket runs.
import type { Logger } from 'pino';
import type { Config } from '../config';
import { startApiServer, type ApiHandlers } from './server';

export interface AdminEndpoints {
  close(): Promise<void>;
}

/** Starts the admin socket and, when configured, the HTTP listener, both on `h`. */
export async function startAdmin(admin: Config['admin'], h: ApiHandlers, log: Logger): Promise<AdminEndpoints> {
  const api = await startApiServer(admin.socket, h, log.child({ component: 'api' }));
  if (!admin.http) return api;
  const { startHttpListener } = await import('./http');
  const http = await startHttpListener(
    {
      ...admin.http,
      tokenFile: admin.httpTokenFile,
      readTokenFile: admin.httpReadTokenFile,
      hostNames: admin.httpHostNames,
    },
    h,
    log.child({ component: 'http' }),
  ).catch(async (err: unknown) => {
    // The socket is up already and the caller never gets its handle: close it here.
    await api.close();
    throw err;
  });
  return {
    close: async () => {
      await api.close();
      await http.close();
    },
  };
}
