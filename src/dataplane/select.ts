// Which dataplane runs: open xdp | ipvs | auto (XDP, falling back to IPVS with the reason
// logged), switch the live one without a gap, and remove an instance's XDP state. The
// implementations are loaded lazily: a host without the addon can still run IPVS.
import fs from 'node:fs';
import type { Logger } from 'pino';
import { XdError } from '../errors';
import type { Dataplane, DataplaneKind, DesiredState } from '../state/types';

/** `dataplane:` in the config: XDP, IPVS, or XDP falling back to IPVS. */
export type DataplaneChoice = 'auto' | 'xdp' | 'ipvs';

/**
 * What opening a dataplane needs: the config's instance, interface, dataplane choice, xdp
 * section and whether sync is on, declared here so the dataplane does not import the config (the daemon passes its
 * Config, which the compiler checks against this).
 */
export interface DataplaneConfig {
  instance: string;
  interface: string;
  dataplane: DataplaneChoice;
  xdp: {
    mode: 'native' | 'generic';
    pinDir: string;
    ringSize: number;
    maxServices: number;
    maxBackends: number;
    flowTableSize: number;
    embryonicTableSize: number;
    takeoverTableSize: number;
    newFlowRate: number;
    synReuseIdleMs: number;
    tooBigRate: number;
  };
  /** NAT's server-side interface (nat.interface; the top-level interface when one-armed): the IPVS NAT sysctls depend on it, and XDP attaches there too when it is another interface (two-armed). */
  nat?: { interface: string; twoArmed?: boolean };
  /** `sync:` in the config; present: connection sync is on, so the program reports flows to its ring buffer (src/sync reads it). */
  sync?: object;
}

/** NAT's server-side interface when it is another one than the top-level interface (two-armed NAT). */
const natIfname = (cfg: DataplaneConfig): string | undefined =>
  cfg.nat && cfg.nat.interface !== cfg.interface ? cfg.nat.interface : undefined;

async function openXdp(cfg: DataplaneConfig, log: Logger): Promise<Dataplane> {
  const { XdpDataplane } = await import('./xdp/dataplane');
  return XdpDataplane.open({
    instance: cfg.instance,
    ifname: cfg.interface,
    mode: cfg.xdp.mode,
    pinDir: cfg.xdp.pinDir,
    ringMax: cfg.xdp.ringSize,
    maxServices: cfg.xdp.maxServices,
    maxBackends: cfg.xdp.maxBackends,
    flowTableSize: cfg.xdp.flowTableSize,
    embryonicTableSize: cfg.xdp.embryonicTableSize,
    takeoverTableSize: cfg.xdp.takeoverTableSize,
    newFlowRate: cfg.xdp.newFlowRate,
    synReuseIdleMs: cfg.xdp.synReuseIdleMs,
    tooBigRate: cfg.xdp.tooBigRate,
    syncExport: cfg.sync !== undefined,
    // A veth whose peer runs no native XDP program: auto falls back to generic mode, xdp refuses.
    vethPeerWithoutXdp: cfg.dataplane === 'auto' ? 'generic' : 'refuse',
    ...(natIfname(cfg) ? { natIfname: natIfname(cfg) } : {}),
    log: log.child({ component: 'xdp' }),
  });
}

async function openIpvs(cfg: DataplaneConfig, log: Logger): Promise<Dataplane> {
  const { IpvsDataplane } = await import('./ipvs/dataplane');
  return IpvsDataplane.open({
    log: log.child({ component: 'ipvs' }),
    nat: { outer: cfg.interface, inner: cfg.nat?.interface },
  });
}

/** How each dataplane is opened (tests pass their own). */
export interface DataplaneOpeners {
  xdp: (cfg: DataplaneConfig, log: Logger) => Promise<Dataplane>;
  ipvs: (cfg: DataplaneConfig, log: Logger) => Promise<Dataplane>;
}

/**
 * `dataplane: auto` fell back to IPVS: a program a previous run pinned for this
 * instance may still be attached (e.g. the restart was refused adoption for a
 * layout/limits mismatch). It would keep forwarding with frozen health ahead of
 * IPVS (XDP runs first and XDP_TX never reaches it), so it is detached and its
 * pins removed, and the log says so. Detach rather than refuse: in auto the
 * operator asked for a dataplane that works, and IPVS is one; a foreign program
 * (not pinned by this instance) is never touched.
 */
async function detachStaleXdp(cfg: DataplaneConfig, log: Logger): Promise<void> {
  const { XdpDataplane, instancePinDir } = await import('./xdp/dataplane');
  const dir = instancePinDir(cfg.xdp.pinDir, cfg.instance);
  if (!fs.existsSync(dir)) return;
  const msg = XdpDataplane.detachInstance(cfg.xdp.pinDir, cfg.instance, cfg.interface, log, natIfname(cfg));
  log.warn(
    { pinDir: dir, interface: cfg.interface },
    `dataplane auto fell back to IPVS: ${msg} (it would keep forwarding with frozen health ahead of IPVS)`,
  );
}

/** Open the dataplane `want` asks for; auto tries XDP, then IPVS (detaching a stale pinned XDP program), and names both reasons if neither runs. */
export async function openDataplane(
  cfg: DataplaneConfig,
  log: Logger,
  want: DataplaneChoice = cfg.dataplane,
  why: { reason?: string } = {},
  openers: DataplaneOpeners = { xdp: openXdp, ipvs: openIpvs },
): Promise<Dataplane> {
  why.reason = want === 'auto' ? 'auto: XDP available' : `${want} requested`;
  if (want === 'xdp') return openers.xdp(cfg, log);
  if (want === 'ipvs') return openers.ipvs(cfg, log);
  let xdpErr: Error;
  try {
    return await openers.xdp(cfg, log);
  } catch (err) {
    xdpErr = err as Error;
    log.warn({ err }, `XDP unavailable, falling back to IPVS: ${xdpErr.message}`);
    why.reason = `auto: XDP unavailable (${xdpErr.message})`;
  }
  let ipvs: Dataplane;
  try {
    ipvs = await openers.ipvs(cfg, log);
  } catch (err) {
    // Neither runs: nothing is changed (a pinned program keeps what it had); the error names both causes.
    throw new XdError(
      'XD_ERR_NO_DATAPLANE',
      `no dataplane can run: XDP: ${xdpErr.message}; IPVS: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    await detachStaleXdp(cfg, log);
  } catch (err) {
    await ipvs.close({ keepState: true }).catch(() => undefined);
    throw err;
  }
  return ipvs;
}

/** A dataplane kind named by an operator ("xdp" | "ipvs"), or XD_ERR_USAGE. */
export function dataplaneKind(kind: string): DataplaneKind {
  if (kind !== 'xdp' && kind !== 'ipvs')
    throw new XdError('XD_ERR_USAGE', `dataplane must be xdp or ipvs, got ${kind}`);
  return kind;
}

/**
 * Switch from `current` to a new dataplane of `kind`, programmed with `state` first. For IPVS
 * that is invisible while XDP still takes the packets; for XDP, attaching it is what moves the
 * traffic. Then, IPVS -> XDP, XDP takes over IPVS's live NAT connections (their reverse
 * entries: a reply before the client's next packet is still translated once IPVS is gone);
 * a failure there is logged and costs only those replies. Only then is the old one removed.
 * On failure the old one stays as it was.
 */
export async function switchDataplane(
  current: Dataplane,
  kind: DataplaneKind,
  state: DesiredState,
  cfg: DataplaneConfig,
  log: Logger,
  openers: DataplaneOpeners = { xdp: openXdp, ipvs: openIpvs },
): Promise<Dataplane> {
  const next = await openDataplane(cfg, log, kind, {}, openers);
  try {
    await next.apply(state);
  } catch (err) {
    await next.close({ keepState: false }).catch(() => undefined);
    throw err;
  }
  if (current.liveConnections && next.adoptNatConnections) {
    try {
      const conns = await current.liveConnections();
      const n = next.adoptNatConnections(conns);
      log.info({ connections: conns.length, nat: n }, `${kind} took over ${n} live NAT connections of ${current.kind}`);
    } catch (err) {
      log.warn(
        { err },
        `${kind} could not take over the live NAT connections of ${current.kind}: a reply that comes before its client's next packet leaves untranslated (${(err as Error).message})`,
      );
    }
  }
  await current.close({ keepState: false });
  return next;
}

/** Remove the instance's XDP program and pins without a running dataplane (stop --detach). */
export async function detachXdp(cfg: DataplaneConfig, log: Logger): Promise<string> {
  const { XdpDataplane } = await import('./xdp/dataplane');
  return XdpDataplane.detachInstance(cfg.xdp.pinDir, cfg.instance, cfg.interface, log, natIfname(cfg));
}
