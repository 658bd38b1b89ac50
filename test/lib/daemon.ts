// One `xdirector run` in a lab namespace, for the end-to-end files whose lab is not
// test/daemon/harness.ts's (the NAT lab of test/lib/nat-lab.ts): started under nsenter (so it
// sees bpffs; nsenter execs, so the child's pid is the daemon's own and a signal reaches exactly
// it), its output kept for failure messages, its CLI and status over its admin socket, and its
// program and pins removed by `stop --detach` with its own config.
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..');
export const BIN = path.join(ROOT, 'bin', 'xdirector.js');

export class LabDaemon {
  child: ChildProcess | undefined;
  readonly log: string[] = [];

  constructor(
    /** The namespace it runs in. */
    readonly ns: string,
    readonly configFile: string,
    readonly socket: string,
    readonly env: Record<string, string> = {},
  ) {}

  /** The daemon's pid (nsenter execs it: the same process). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  private argv(args: string[]): string[] {
    return [`--net=/run/netns/${this.ns}`, process.execPath, BIN, ...args];
  }

  start(): void {
    const c = spawn('nsenter', this.argv(['run', '-c', this.configFile]), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env },
    });
    const keep = (d: Buffer) => {
      this.log.push(String(d));
      if (this.log.length > 2000) this.log.shift();
    };
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    this.child = c;
  }

  /** The CLI against this daemon's socket; throws with its stderr unless it exits 0. */
  cli(args: string[]): string {
    const r = spawnSync('nsenter', this.argv([...args, '--socket', this.socket]), {
      encoding: 'utf8',
      timeout: 20_000,
    });
    if (r.status !== 0) throw new Error(`xdirector ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
    return r.stdout;
  }

  /** The status document (the API's JSON, read field by field by the tests). */
  status(): any {
    return JSON.parse(this.cli(['status', '--json']));
  }

  /** The last lines it wrote, for a failure message. */
  tail(chars = 4000): string {
    return this.log.join('').slice(-chars);
  }

  /** Signal exactly this daemon and wait for it to exit (at most 30 s). */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  }

  /** Stop it and remove its program and pins (`stop --detach` with its own config). */
  async destroy(): Promise<void> {
    await this.kill('SIGTERM');
    spawnSync('nsenter', this.argv(['stop', '--detach', '-c', this.configFile]), { timeout: 20_000 });
  }
}

/** Poll `cond` every 100 ms until it holds (a throw counts as not yet); the ms it took. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  detail: () => string = () => '',
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (await cond()) return Date.now() - t0;
    } catch {
      /* not answering yet */
    }
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
