// End-to-end harness: a namespace lab (scripts/lab), real MariaDB on each real
// server, and `xdirector run` started in the director namespace under nsenter
// (so it sees bpffs). Everything is named with a per-run prefix and removed in
// teardown(): daemon by pid, `stop --detach` for program and pins, MariaDB by
// pid and temp dir, namespaces by name.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { createLab, Lab, LabHost } from '../../scripts/lab/topology';
import { MariaDB } from '../../scripts/lab/mariadb';
import { run } from '../../scripts/lab/exec';

export const ROOT = path.resolve(__dirname, '../../..');
export const BIN = path.join(ROOT, 'bin', 'xdirector.js');

export interface Director {
  host: LabHost;
  configFile: string;
  socket: string;
  child: ChildProcess | null;
  log: string[];
}

export interface E2eOptions {
  tag: string; // 2-4 chars, distinguishes test files
  directors?: 1 | 2;
  realServers?: number;
  xdpMode?: 'native' | 'generic';
  mariadb?: boolean;
  mariadbArgs?: (i: number) => Partial<ConstructorParameters<typeof MariaDB>[0]>;
}

export class E2e {
  lab!: Lab;
  dbs: MariaDB[] = [];
  directors: Director[] = [];
  tmp: string;
  prefix: string;
  instance: string;
  private pinDir: string;

  constructor(readonly o: E2eOptions) {
    this.prefix = `xt${o.tag}${process.pid % 100000}`.slice(0, 12);
    this.instance = this.prefix;
    this.pinDir = `/sys/fs/bpf/${this.prefix}`;
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${this.prefix}-`));
  }

  async setup(): Promise<void> {
    this.lab = await createLab({
      prefix: this.prefix,
      directors: this.o.directors ?? 1,
      realServers: this.o.realServers ?? 3,
      ipv6: true,
      xdpMode: this.o.xdpMode ?? 'native',
    });
    if (this.o.mariadb !== false) {
      this.dbs = this.lab.realServers.map(
        (h, i) =>
          new MariaDB({
            prefix: this.prefix,
            name: h.name,
            serverId: i + 1,
            netns: h.ns,
            advertiseHost: h.ipv4,
            baseDir: this.tmp,
            ...(this.o.mariadbArgs?.(i) ?? {}),
          }),
      );
      await Promise.all(this.dbs.map((d) => d.start()));
    }
    this.directors = this.lab.directors.map((h) => ({
      host: h,
      configFile: path.join(this.tmp, `${h.name}.yaml`),
      socket: path.join(this.tmp, `${h.name}.sock`),
      child: null,
      log: [],
    }));
  }

  /** A config for director `d` (instance per director so two can share the machine's bpffs). */
  config(d: Director, services: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      instance: `${this.instance}${d.host.name}`,
      interface: 'eth0',
      dataplane: 'xdp',
      xdp: {
        mode: this.o.xdpMode ?? 'native',
        pin_dir: this.pinDir,
        ring_size: 65537,
        flow_table_size: 65536,
        max_services: 8,
        max_backends: 256,
      },
      admin: { socket: d.socket },
      state_dir: this.tmp,
      log: { level: 'debug' },
      services,
      ...extra,
    };
  }

  writeConfig(d: Director, cfg: Record<string, unknown>): void {
    fs.writeFileSync(d.configFile, YAML.stringify(cfg));
  }

  /** Start `xdirector run` in the director's namespace and wait until its API answers. */
  async startDirector(d: Director, env: Record<string, string> = {}): Promise<void> {
    const child = this.lab.spawn(d.host, process.execPath, [BIN, 'run', '-c', d.configFile], {
      mode: 'nsenter',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    } as any);
    d.child = child;
    const onData = (b: Buffer) => {
      for (const l of b.toString('utf8').split('\n'))
        if (l) {
          d.log.push(l);
          if (d.log.length > 5000) d.log.shift();
        }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const deadline = Date.now() + 30000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `xdirector run exited (${child.exitCode ?? child.signalCode}):\n${d.log.slice(-30).join('\n')}`,
        );
      try {
        await this.cli(d, ['status', '--json']);
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(
            `xdirector run did not answer within 30 s: ${(err as Error).message}\n${d.log.slice(-30).join('\n')}`,
            { cause: err },
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** SIGTERM the daemon and wait for it to exit (the program and maps stay). */
  async stopDirector(d: Director, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = d.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30000))]);
    d.child = null;
  }

  /** Run the CLI as another process in the director namespace. */
  async cli(d: Director, args: string[], allowFail = false): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await this.lab.run(d.host, process.execPath, [BIN, ...args, '--socket', d.socket], {
      mode: 'nsenter',
      allowFail: true,
      timeoutMs: 30000,
    } as any);
    const code = typeof r.code === 'number' ? r.code : 1;
    if (code !== 0 && !allowFail) throw new Error(`xdirector ${args.join(' ')} exited ${code}: ${r.stderr}`);
    return { code, stdout: r.stdout, stderr: r.stderr };
  }

  async status(d: Director): Promise<any> {
    return JSON.parse((await this.cli(d, ['status', '--json'])).stdout);
  }

  /** Wait until every backend of every service in status has a MAC (resolved) or the timeout passes. */
  async waitResolved(d: Director, timeoutMs = 10000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.status(d);
      const ok = st.dataplane.services.every((s: any) => s.backends.every((b: any) => b.mac));
      if (ok || Date.now() > deadline) return st;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  serverIdOf(h: LabHost): number {
    return this.lab.realServers.indexOf(h) + 1;
  }

  async teardown(): Promise<void> {
    for (const d of this.directors) {
      await this.stopDirector(d).catch(() => undefined);
      await run(
        'nsenter',
        [`--net=/run/netns/${d.host.ns}`, process.execPath, BIN, 'stop', '--detach', '-c', d.configFile],
        { allowFail: true, timeoutMs: 20000 } as any,
      ).catch(() => undefined);
    }
    await Promise.all(this.dbs.map((d) => d.destroy().catch(() => undefined)));
    await this.lab?.destroy();
    fs.rmSync(this.tmp, { recursive: true, force: true });
    // stop --detach removed the instances; this run's pin directory goes whatever is left in it.
    fs.rmSync(this.pinDir, { recursive: true, force: true });
  }
}

export function svc(
  name: string,
  vip: string,
  backends: { address: string; name: string; weight?: number }[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name, vip, port: 3306, protocol: 'tcp', scheduler: 'maglev', check: 'none', backends, ...extra };
}
