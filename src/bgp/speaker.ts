// The director's BGP speaker: a BIRD process started and supervised by the daemon, in the
// daemon's own network namespace, driven over its control socket.
//
// - BIRD runs in the foreground as our child, under `setpriv --pdeathsig TERM`: if xdirector
//   dies (even by SIGKILL) the kernel sends BIRD SIGTERM, BIRD closes its sessions with a Cease
//   and the routers withdraw the VIPs at once. If the whole machine dies, BFD (or the hold
//   timer) withdraws them.
// - Each VIP is a static protocol in BIRD, disabled at start: announce = enable, withdraw =
//   disable. sync() makes BIRD's set equal the wanted set; it runs on every change and every
//   SYNC_MS (and after a BIRD restart, which starts with nothing announced).
import fs from 'node:fs';
import path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { BgpConfig } from '../config';
import { md5KeyOfFile } from '../config';
import { XdError } from '../errors';
import { renderBirdConfig, vipProtocol, peerProtocol } from './bird-config';
import { parseProtocols, BirdProtocol } from './birdc';
import { birdCommand } from './control';
import { VipRoutes } from './vip-routes';

const SYNC_MS = 1000;
/** How long one sync waits for BIRD's answer: BIRD answers its socket in milliseconds when it runs. */
const SYNC_TIMEOUT_MS = 1500;
/**
 * A BIRD that has not answered its control socket for this long, over at least HUNG_SYNCS syncs
 * in a row, is hung (stopped, deadlocked, spinning): its sessions may even stay up while it
 * announces a stale set. It is killed (SIGKILL, its own pid) and restarted like one that exited.
 */
export const HUNG_MS = 3 * SYNC_MS;
const HUNG_SYNCS = 3;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 10_000;

export interface BgpNeighbourStatus {
  name: string;
  address: string;
  as: number;
  bfd: boolean;
  /** BGP FSM state from BIRD (Established, Active, Connect, Idle, …) or "unknown" while BIRD is down. */
  state: string;
  established: boolean;
  since: string;
  /** Prefixes exported to this neighbour. */
  exported: number;
  lastError?: string;
}

export interface BgpStatus {
  daemon: {
    /** BIRD is running and answering its control socket. */
    running: boolean;
    pid: number | null;
    /** BIRD runs but has not answered its control socket for hungAfterMs (it is about to be killed and restarted). */
    hung: boolean;
    /** Control-socket syncs that failed in a row (0 while BIRD answers). */
    failedSyncs: number;
    restarts: number;
    /** Why BIRD last stopped: "exited with 1", "killed by SIGTERM", "hung: no answer on the control socket for 3 s". */
    lastExit?: string;
    socket: string;
  };
  /** The director itself is drained: every VIP withdrawn. */
  directorDrained: boolean;
  neighbours: BgpNeighbourStatus[];
  /** VIPs this director wants announced (it can serve them). */
  wanted: string[];
  /** VIPs BIRD currently has enabled (announced to every established neighbour). */
  announced: string[];
  /** Why each configured VIP is not wanted, if it is not. */
  withdrawnBecause: Record<string, string>;
}

export interface BgpSpeakerOptions {
  cfg: BgpConfig;
  /** Instance name: names the files under cfg.runDir. */
  instance: string;
  log: Logger;
  /** Called after every sync attempt, answered or not (the daemon's liveness: the sync loop turns). */
  onSyncTurn?: () => void;
}

export class BgpSpeaker {
  private child: ChildProcess | null = null;
  private stopping = false;
  private restarts = 0;
  private lastExit?: string;
  private wanted = new Set<string>();
  private reasons: Record<string, string> = {};
  private enabled = new Set<string>();
  private syncing: Promise<void> = Promise.resolve();
  private syncQueued = false;
  private timer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private lastProtocols: BirdProtocol[] = [];
  private directorDrained = false;
  /** Syncs in a row that got no answer from BIRD, and when BIRD last answered (monotonic ms). */
  private failedSyncs = 0;
  private lastAnswerAt = performance.now();
  /** Set when the supervisor kills a hung BIRD: the exit reason shown instead of "killed by SIGKILL". */
  private hungReason?: string;
  readonly socket: string;
  readonly configFile: string;
  private readonly routes: VipRoutes;

  constructor(private readonly o: BgpSpeakerOptions) {
    this.socket = path.join(o.cfg.runDir, `${o.instance}.bird.ctl`);
    this.configFile = path.join(o.cfg.runDir, `${o.instance}.bird.conf`);
    this.routes = new VipRoutes(
      o.cfg.announce.map((a) => a.vip),
      o.log,
    );
  }

  /** Put back a VIP's local route that is missing (vip-routes.ts); start does it before BIRD runs. */
  async reconcileRoutes(): Promise<void> {
    await this.routes.reconcile();
  }

  private get log(): Logger {
    return this.o.log;
  }

  /** Write BIRD's config, start it and wait until its control socket answers. */
  async start(): Promise<void> {
    const passwords = new Map<string, string>();
    for (const n of this.o.cfg.neighbours) {
      if (n.password !== undefined) passwords.set(n.name, n.password);
      else if (n.passwordFile !== undefined) {
        try {
          passwords.set(n.name, md5KeyOfFile(fs.readFileSync(n.passwordFile, 'utf8')));
        } catch (err) {
          throw new XdError(
            'XD_ERR_BGP',
            `bgp neighbour ${n.name}: cannot read password_file ${n.passwordFile}: ${(err as Error).message}: make it readable by root`,
            { cause: err },
          );
        }
      }
    }
    // Before the first announcement: a VIP routed here must never be routed back (vip-routes.ts).
    await this.routes.reconcile();
    fs.mkdirSync(this.o.cfg.runDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(this.configFile, renderBirdConfig(this.o.cfg, { passwords }), { mode: 0o600 });
    try {
      await this.spawnBird();
    } catch (err) {
      await this.routes.remove().catch(() => undefined);
      throw err;
    }
    this.timer = setInterval(() => this.kick(), SYNC_MS);
  }

  private async spawnBird(): Promise<void> {
    try {
      fs.unlinkSync(this.socket);
    } catch {
      /* none */
    }
    // setpriv --pdeathsig: BIRD gets SIGTERM when this process dies, however it dies.
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'TERM', '--', this.o.cfg.bird, '-f', '-c', this.configFile, '-s', this.socket],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.enabled.clear();
    this.failedSyncs = 0;
    this.lastAnswerAt = performance.now();
    this.hungReason = undefined;
    const onLine = (b: Buffer) => {
      for (const line of b.toString('utf8').split('\n'))
        if (line.trim()) this.log.info({ bird: line.replace(/^\S+ \S+ /, '') }, 'bird');
    };
    child.stdout?.on('data', onLine);
    child.stderr?.on('data', onLine);
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`cannot run ${this.o.cfg.bird}: ${err.message}`));
      child.once('exit', (code, sig) =>
        resolve(
          this.child === child && this.hungReason ? this.hungReason : sig ? `killed by ${sig}` : `exited with ${code}`,
        ),
      );
    });
    void exited.then((why) => {
      if (this.child !== child) return;
      this.child = null;
      this.enabled.clear();
      this.lastExit = why;
      if (this.stopping) return;
      const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(this.restarts, 5));
      this.restarts++;
      this.log.error(
        { why, restartInMs: delay },
        `bird ${why}: every VIP is withdrawn with its sessions; restarting it`,
      );
      this.restartTimer = setTimeout(() => {
        if (this.stopping) return;
        this.spawnBird().then(
          () => this.kick(),
          (err) => this.log.error({ err }, 'bird restart failed'),
        );
      }, delay);
    });
    const deadline = performance.now() + 10_000;
    for (;;) {
      const why = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
      if (why !== null)
        throw new XdError(
          'XD_ERR_BGP',
          `bird ${why} at start (config ${this.configFile}): see the bird lines in the log; is bird2 installed?`,
        );
      try {
        await birdCommand(this.socket, 'show status', 1000);
        this.log.info({ pid: child.pid, socket: this.socket }, 'bird running');
        return;
      } catch (err) {
        if (performance.now() > deadline) {
          child.kill('SIGKILL');
          throw new XdError(
            'XD_ERR_BGP',
            `bird did not answer on ${this.socket} within 10 s: ${(err as Error).message}`,
            { cause: err },
          );
        }
      }
    }
  }

  /**
   * The VIPs this director can serve now (`reasons`: why each other configured VIP cannot).
   * A drained director announces nothing.
   */
  setServable(servable: Set<string>, reasons: Record<string, string> = {}): void {
    const next = new Set<string>();
    const why: Record<string, string> = {};
    for (const a of this.o.cfg.announce) {
      if (this.stopping) why[a.vip] = 'stopping';
      else if (this.directorDrained) why[a.vip] = 'director drained';
      else if (servable.has(a.vip)) next.add(a.vip);
      else why[a.vip] = reasons[a.vip] ?? 'cannot serve it';
    }
    const changed = next.size !== this.wanted.size || [...next].some((v) => !this.wanted.has(v));
    for (const v of next) if (!this.wanted.has(v)) this.log.info({ vip: v }, `announcing ${v}`);
    for (const v of this.wanted)
      if (!next.has(v)) this.log.warn({ vip: v, reason: why[v] }, `withdrawing ${v}: ${why[v]}`);
    this.wanted = next;
    this.reasons = why;
    if (changed) this.kick();
  }

  /** Drain (true) or undrain the whole director. Returns once BIRD has the new set. */
  async setDirectorDrained(on: boolean, servable: Set<string>, reasons: Record<string, string> = {}): Promise<void> {
    this.directorDrained = on;
    this.setServable(servable, reasons);
    await this.syncNow();
  }

  get drained(): boolean {
    return this.directorDrained;
  }

  private kick(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    this.syncing = this.syncing.then(async () => {
      this.syncQueued = false;
      await this.sync().then(
        () => {
          this.failedSyncs = 0;
          this.lastAnswerAt = performance.now();
        },
        (err: unknown) => {
          // An error reply (8xxx/9xxx) is an answer: BIRD runs. No answer at all counts towards hung.
          if (err instanceof XdError && typeof err.detail.code === 'number') this.lastAnswerAt = performance.now();
          else this.failedSyncs++;
          this.log.warn(
            { err, failedSyncs: this.failedSyncs },
            `bgp sync failed (retried in ${SYNC_MS} ms): ${(err as Error).message}`,
          );
          this.checkHung();
        },
      );
      this.o.onSyncTurn?.();
    });
  }

  /** Kill a BIRD that stopped answering (HUNG_MS, HUNG_SYNCS): the exit handler restarts it. */
  private checkHung(): void {
    const c = this.child;
    const silentMs = performance.now() - this.lastAnswerAt;
    if (!c || this.stopping || this.hungReason || this.failedSyncs < HUNG_SYNCS || silentMs < HUNG_MS) return;
    this.hungReason = `hung: no answer on the control socket for ${Math.round(silentMs / 1000)} s (${this.failedSyncs} syncs in a row)`;
    this.log.error(
      { pid: c.pid, failedSyncs: this.failedSyncs, silentMs: Math.round(silentMs) },
      `bird ${this.hungReason}: killing it (SIGKILL, pid ${c.pid}) to restart it; its sessions drop and the routers withdraw the VIPs until it is back`,
    );
    // Its own pid: setpriv exec()s bird, so the child's pid is BIRD's.
    c.kill('SIGKILL');
  }

  /**
   * Run a sync now (after any queued one) and wait for it. Its failure is thrown (the
   * periodic sync retries it anyway): a caller that reports what BIRD does must not report
   * it unless BIRD confirmed it. BIRD not running is a failure too (nothing was confirmed).
   */
  async syncNow(): Promise<void> {
    const mine = this.syncing.then(() => this.sync(true));
    this.syncing = mine.catch((err) =>
      this.log.warn({ err }, `bgp sync failed (retried in ${SYNC_MS} ms): ${(err as Error).message}`),
    );
    await mine;
  }

  /** Make BIRD's enabled VIP protocols equal the wanted set; refresh the protocol table. */
  private async sync(strict = false): Promise<void> {
    if (!this.child) {
      if (strict)
        throw new XdError(
          'XD_ERR_BGP',
          `bird is not running${this.lastExit ? ` (${this.lastExit})` : ''}: nothing was confirmed; it is restarted with every VIP disabled, then given the wanted set`,
        );
      return;
    }
    let protos = parseProtocols(await birdCommand(this.socket, 'show protocols all', SYNC_TIMEOUT_MS));
    const byName = new Map(protos.map((p) => [p.name, p]));
    let changed = false;
    for (const a of this.o.cfg.announce) {
      const name = vipProtocol(a.vip);
      const p = byName.get(name);
      const isUp = p !== undefined && p.state !== 'down';
      const want = this.wanted.has(a.vip);
      if (want && !isUp) {
        await birdCommand(this.socket, `enable ${name}`, SYNC_TIMEOUT_MS);
        changed = true;
      }
      if (!want && isUp) {
        await birdCommand(this.socket, `disable ${name}`, SYNC_TIMEOUT_MS);
        changed = true;
      }
    }
    if (changed) protos = parseProtocols(await birdCommand(this.socket, 'show protocols all', SYNC_TIMEOUT_MS));
    this.lastProtocols = protos;
    this.enabled = new Set(
      this.o.cfg.announce
        .filter((a) => protos.find((p) => p.name === vipProtocol(a.vip))?.state === 'up')
        .map((a) => a.vip),
    );
  }

  /** Neighbours and announcements (from the last sync, at most SYNC_MS old; fresh after a change). */
  status(): BgpStatus {
    const hung =
      this.child !== null &&
      this.failedSyncs > 0 &&
      (this.hungReason !== undefined || performance.now() - this.lastAnswerAt >= HUNG_MS);
    const running = this.child !== null && !hung;
    return {
      daemon: {
        running,
        pid: this.child?.pid ?? null,
        hung,
        failedSyncs: this.failedSyncs,
        restarts: this.restarts,
        ...(this.lastExit ? { lastExit: this.lastExit } : {}),
        socket: this.socket,
      },
      directorDrained: this.directorDrained,
      neighbours: this.o.cfg.neighbours.map((n) => {
        const p = running ? this.lastProtocols.find((x) => x.name === peerProtocol(n.name)) : undefined;
        const state = p?.bgpState ?? (p ? p.info.split(' ')[0] || p.state : 'unknown');
        return {
          name: n.name,
          address: n.address,
          as: n.as,
          bfd: n.bfd,
          state,
          established: state === 'Established',
          since: p?.since ?? '',
          exported: p?.exported ?? 0,
          ...(p?.lastError ? { lastError: p.lastError } : {}),
        };
      }),
      wanted: [...this.wanted],
      announced: running ? [...this.enabled] : [],
      withdrawnBecause: { ...this.reasons },
    };
  }

  /**
   * Graceful stop: withdraw every VIP first (the routers move new flows to the other
   * directors while this one still forwards), wait `graceMs` for the UPDATEs to spread,
   * then stop BIRD (its sessions close with a Cease).
   */
  async stop(graceMs = 500): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.restartTimer);
    this.wanted.clear();
    if (this.child) {
      await this.syncNow().catch(() => undefined);
      if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
    }
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const killed = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
      ]);
      if (!killed) {
        c.kill('SIGKILL');
        await exited;
      }
    }
    this.child = null;
    try {
      fs.unlinkSync(this.socket);
    } catch {
      /* gone */
    }
    // Withdrawn everywhere now: the VIP's packets no longer come here, and its route goes.
    await this.routes
      .remove()
      .catch((err: unknown) =>
        this.log.error({ err }, `removing the VIPs' local routes failed: ${(err as Error).message}`),
      );
  }
}
