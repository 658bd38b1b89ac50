// What a config reload changes, by typed comparison of the parts that matter.
import { isDeepStrictEqual } from 'node:util';
import type { Config, ServiceConfig } from '../config';

/** Sections a running daemon cannot change: a reload that changes one is refused. */
export function fixedSectionsChanged(prev: Config, next: Config): string[] {
  const out: string[] = [];
  if (next.instance !== prev.instance) out.push('instance');
  if (next.interface !== prev.interface) out.push('interface');
  if (!isDeepStrictEqual(next.xdp, prev.xdp)) out.push('xdp');
  if (!isDeepStrictEqual(next.admin, prev.admin)) out.push('admin');
  if (next.stateDir !== prev.stateDir) out.push('state_dir');
  if (!isDeepStrictEqual(next.vrrp, prev.vrrp)) out.push('vrrp');
  if (!isDeepStrictEqual(next.bgp, prev.bgp)) out.push('bgp');
  return out;
}

/** What the health monitor is built from, per service. */
function healthView(s: ServiceConfig) {
  return {
    name: s.name,
    check: s.check,
    // A new script, timeout, user or dynamic setting needs a new monitor (it resolves the user at start).
    checkScript: s.checkScript,
    pool: s.pool,
    readersIncludeWriter: s.readersIncludeWriter,
    scheduler: s.scheduler,
    port: s.port,
    backends: s.backends.map((b) => ({ name: b.name, key: b.key, address: b.address, port: b.port, weight: b.weight })),
  };
}

/** Does the reload change what the health monitor checks or how? If not, the running monitor (and its state) stays. */
export function healthInputsChanged(prev: Config, next: Config): boolean {
  return (
    !isDeepStrictEqual(next.monitor, prev.monitor) ||
    !isDeepStrictEqual(next.health, prev.health) ||
    !isDeepStrictEqual(next.services.map(healthView), prev.services.map(healthView))
  );
}
