// One daemon per instance: `xdirector run` takes the instance's lock before it touches
// anything (pins, XDP, VRRP, BIRD, sockets), so a second run of a running instance is refused
// with nothing changed.
//
// The lock is an abstract unix socket bound by name, "\0xdirector/<instance>" (Linux, unix(7)):
// - bind() is atomic: of two daemons starting at once exactly one gets it;
// - the kernel releases it when the holder dies, however it dies (SIGKILL included): no stale
//   pid file to judge, no pid reuse to guess about, nothing on disk to clean up;
// - Node creates its sockets close-on-exec, so BIRD (our child, which may outlive us for a
//   moment) never holds it;
// - the holder answers a connection with its pid and config, which the refusal names.
// Abstract names belong to the network namespace, which is the scope that matters: the
// interface the program attaches to, the VIPs VRRP adds and the sessions BIRD holds live there
// (a same-named instance in another network namespace has none of them in common, except a
// shared pin_dir, which its own lock does not cover: give each instance its own name).
import net from 'node:net';
import { XdError } from '../errors';

export interface LockHolder {
  pid: number;
  config: string;
  startedAt: string;
}

export function lockName(instance: string): string {
  return `\0xdirector/${instance}`;
}

/** Ask the holder of an instance's lock who it is (undefined: nobody answers). */
export async function lockHolder(instance: string, timeoutMs = 1000): Promise<LockHolder | undefined> {
  return new Promise((resolve) => {
    const c = net.connect({ path: lockName(instance) });
    let buf = '';
    const done = (h: LockHolder | undefined) => {
      clearTimeout(t);
      c.destroy();
      resolve(h);
    };
    const t = setTimeout(() => done(undefined), timeoutMs);
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
    });
    c.on('end', () => {
      try {
        const h = JSON.parse(buf) as LockHolder;
        done(typeof h.pid === 'number' ? h : undefined);
      } catch {
        done(undefined);
      }
    });
    c.on('error', () => done(undefined));
  });
}

export class InstanceLock {
  private constructor(
    private readonly server: net.Server,
    readonly instance: string,
  ) {}

  /**
   * Take the lock of `instance`, or throw XD_ERR_INSTANCE_RUNNING naming the running daemon's
   * pid and the fix. Nothing else is touched either way.
   */
  static async acquire(instance: string, me: { config: string }): Promise<InstanceLock> {
    const info: LockHolder = { pid: process.pid, config: me.config, startedAt: new Date().toISOString() };
    const server = net.createServer((c) => {
      c.end(`${JSON.stringify(info)}\n`);
    });
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      server.once('error', (e: NodeJS.ErrnoException) => resolve(e));
      server.listen({ path: lockName(instance) }, () => resolve(null));
    });
    if (err === null) {
      // The lock must not keep a stopping daemon alive.
      server.unref();
      return new InstanceLock(server, instance);
    }
    server.close();
    if (err.code !== 'EADDRINUSE') {
      throw new XdError(
        'XD_ERR_INSTANCE_RUNNING',
        `take the lock of instance ${instance} (abstract unix socket @xdirector/${instance}): ${err.message}`,
        { cause: err },
      );
    }
    const h = await lockHolder(instance);
    const who = h ? `pid ${h.pid}, config ${h.config}, running since ${h.startedAt}` : 'its pid did not answer';
    const stop = h ? `xdirector stop -c ${h.config}` : 'xdirector stop -c <its config>';
    throw new XdError(
      'XD_ERR_INSTANCE_RUNNING',
      `instance ${instance} is already running (${who}); nothing was changed: stop it first (${stop}, or systemctl stop xdirector), use xdirector reload to apply a new config, or give this config another instance name`,
      { detail: { instance, ...(h ? { pid: h.pid, config: h.config } : {}) } },
    );
  }

  /** Release the lock (the kernel would at exit anyway). */
  async release(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
