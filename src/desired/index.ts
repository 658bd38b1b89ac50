// The desired state: config services + the health snapshot + operator drains + backend MACs
// -> the DesiredState handed whole to a Dataplane. The one place that decides each backend's
// weight and state. Pure (no I/O, no clock): the daemon calls desiredState() again whenever
// one of its inputs changes.
//
// The writer of a service is not elected here: health elects it once per round
// (health/election.ts electWriters()) and the snapshot carries it (snapshot.writers); this
// module only reads it. Alerts (split brain, no writer, empty readers pool) are raised by
// health too, never here.
//
// Per backend, in this order:
//   in maintenance (operator, `xdirector maint`) -> maint, weight 0 (its established flows end,
//                                                  like down; health does not bring it back)
//   not up (checks failed, or not checked yet)  -> down, weight 0
//   drained by the operator (name or key)       -> draining, weight 0
//   pool writer, not the elected writer         -> down, weight 0 (its sessions are re-hashed,
//                                                  so a demoted primary keeps no writes)
//   pool readers, neither an eligible replica
//     nor the elected writer it includes        -> draining, weight 0
//   otherwise                                   -> weight = weight x lc weight (lc
//                                                  scheduler), active; weight 0 -> draining
// where weight is the run-time weight (`xdirector weight`) when one is set, else the weight a
// dynamic check script last set (check: script, dynamic: true), else the config's.
// Drains, maint and run-time weights name BACKEND (every service) or SERVICE/BACKEND (targets.ts).
// A service that is not checked (check none, or no health monitor) treats every backend as up
// and in the pool: only drains and configured weights apply.

import { backendForwarding } from '../config';
import type { ServiceConfig, TunnelConfig } from '../config';
import type { BackendHealth, HealthSnapshot } from '../health';
import type { BackendState, DesiredBackend, DesiredService, DesiredState } from '../state/types';
import { targeted, targetValue } from './targets';
export { resolveTarget, targetValue } from './targets';
export type { Target } from './targets';

export interface DesiredInputs {
  services: readonly ServiceConfig[];
  /** null: no health monitor (no service is checked). */
  health: HealthSnapshot | null;
  /** Operator drains: BACKEND or SERVICE/BACKEND (name or key; targets.ts). */
  drained: ReadonlySet<string>;
  /** Backends in maintenance (`xdirector maint`), targets like drained. */
  maint?: ReadonlySet<string>;
  /** Run-time weights (`xdirector weight`) by target; they override the config's weight. */
  weights?: ReadonlyMap<string, number>;
  /** Canonical backend address -> MAC from the neighbour table (a static config `mac:` wins); for a tunnel backend, the next hop's MAC. */
  macs: ReadonlyMap<string, string>;
  /** The director's tunnel addresses (config tunnel section); needed when a backend is tunnelled. */
  tunnel?: TunnelConfig;
  /** Path MTU per tunnel backend address, from the route towards it. */
  mtus?: ReadonlyMap<string, number>;
}

export interface UnresolvedBackend {
  service: string;
  /** Backend name. */
  backend: string;
  /** Canonical backend address (what the neighbour table is asked about). */
  address: string;
}

export interface DesiredOutput {
  state: DesiredState;
  /** Elected writer key per checked service that has one to elect (null: none, failing closed). */
  writers: Record<string, string | null>;
  /** Backends with neither a static nor a neighbour-table MAC (not guessed; XDP cannot use them). */
  unresolved: UnresolvedBackend[];
}

interface Decision {
  weight: number;
  state: BackendState;
}

function decide(
  s: ServiceConfig,
  b: ServiceConfig['backends'][number],
  h: BackendHealth | undefined,
  checked: boolean,
  writer: string | undefined,
  inp: DesiredInputs,
  base: number,
): Decision {
  if (inp.maint && targeted(inp.maint, s, b)) return { weight: 0, state: 'maint' };
  const up = checked ? (h?.up ?? false) : true;
  if (!up) return { weight: 0, state: 'down' };
  if (targeted(inp.drained, s, b)) return { weight: 0, state: 'draining' };
  if (checked && s.pool === 'writer' && b.key !== writer) return { weight: 0, state: 'down' };
  if (checked && s.pool === 'readers' && b.key !== writer && !(h?.readerEligible ?? false))
    return { weight: 0, state: 'draining' };
  const lc = checked && s.scheduler === 'lc' && h ? h.lcWeight : 1;
  const weight = base * lc;
  return weight > 0 ? { weight, state: 'active' } : { weight: 0, state: 'draining' };
}

/** The one function that computes the desired state. */
export function desiredState(inp: DesiredInputs): DesiredOutput {
  const out: DesiredOutput = { state: { services: [] }, writers: {}, unresolved: [] };
  const byKey = new Map((inp.health?.backends ?? []).map((b) => [b.key, b]));
  for (const s of inp.services) {
    const checked = inp.health !== null && s.check !== 'none';
    const writer = (checked ? inp.health?.writers[s.name] : undefined) ?? undefined;
    if (checked && (writer !== undefined || s.pool === 'writer')) out.writers[s.name] = writer ?? null;
    const backends = s.backends.map((b): DesiredBackend => {
      const runtime = inp.weights ? targetValue(inp.weights, s, b) : undefined;
      // A dynamic check script's weight (keepalived misc_dynamic) replaces the configured one; the operator's run-time weight still wins.
      const scripted =
        checked && s.check === 'script' && s.checkScript?.dynamic
          ? (byKey.get(b.key)?.scriptWeight ?? undefined)
          : undefined;
      const base = runtime ?? scripted ?? b.weight;
      const d = decide(s, b, byKey.get(b.key), checked, writer, inp, base);
      const mac = b.mac ?? inp.macs.get(b.address);
      if (!mac) out.unresolved.push({ service: s.name, backend: b.name, address: b.address });
      return {
        key: b.key,
        name: b.name,
        address: b.address,
        port: b.port,
        family: b.family,
        weight: d.weight,
        configWeight: base,
        state: d.state,
        ...(runtime !== undefined ? { runtimeWeight: runtime } : {}),
        ...(mac ? { mac } : {}),
        ...backendForwarding(b, s, inp.tunnel, inp.mtus?.get(b.address)),
      };
    });
    const svc: DesiredService = {
      name: s.name,
      vip: s.vip,
      port: s.port,
      proto: s.protocol,
      family: s.family,
      scheduler: s.scheduler,
      ring: { kind: s.ring, size: s.ringSize },
      onEmpty: s.onEmpty,
      backends,
    };
    out.state.services.push(svc);
  }
  return out;
}
