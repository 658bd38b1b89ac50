// Per-second rates like `ipvsadm -Ln --rate`, from the dataplane's counters: the daemon samples
// them every interval and keeps the previous sample; a rate is the difference of the last two
// samples over the time between them. Kept in the daemon (not computed by the CLI from two
// status calls) so that status, the metrics and the HTTP page show the same numbers at once and
// `status --rate` answers without waiting an interval. IPVS's own estimator (the kernel's
// ip_vs_est) also ticks every 2 s; it smooths further, this one reports the last window as is.
//
// Only inbound counters exist: with direct routing and tunnels the replies go from the real
// servers to the clients and never pass the director, so there is no OutPPS / OutBPS.
import type { ServiceStatus } from '../state/types';

export interface Rate {
  /** New connections (flows) per second: ipvsadm's CPS. */
  cps: number;
  /** Packets per second towards the backends: ipvsadm's InPPS. */
  inPps: number;
  /** Bytes per second towards the backends: ipvsadm's InBPS. */
  inBps: number;
}

export interface RateStatus {
  /** Seconds between the two samples the rates come from. */
  intervalSeconds: number;
  /** ISO time of the newer sample. */
  at: string;
  services: (Rate & { name: string; backends: (Rate & { key: string; name: string })[] })[];
}

interface Counters {
  newFlows: number;
  packets: number;
  bytes: number;
}
interface Sample {
  at: number;
  wall: number;
  counters: Map<string, Counters>;
}

/** A counter that went backwards (a service or backend re-created) counts as 0 for that window, not as a negative rate. */
const per = (now: number, before: number | undefined, seconds: number) =>
  before === undefined || now < before ? 0 : (now - before) / seconds;

export class RateEstimator {
  private prev?: Sample;
  private last?: Sample;
  private services: ServiceStatus[] = [];

  /**
   * Records the counters of `services` at time `at` (ms on a monotonic clock: the window is the
   * difference of two, which a wall-clock step must not change); `wall` (Date.now()) is only shown.
   */
  sample(services: readonly ServiceStatus[], at: number, wall: number = at): void {
    const counters = new Map<string, Counters>();
    for (const s of services) {
      counters.set(s.name, { newFlows: s.newFlows, packets: s.packets, bytes: s.bytes });
      for (const b of s.backends)
        counters.set(`${s.name}\0${b.key}`, { newFlows: b.newFlows, packets: b.packets, bytes: b.bytes });
    }
    this.prev = this.last;
    this.last = { at, wall, counters };
    this.services = [...services];
  }

  /** The rates over the last window; null until two samples were taken. */
  current(): RateStatus | null {
    const a = this.prev;
    const b = this.last;
    if (!a || !b || b.at <= a.at) return null;
    const seconds = (b.at - a.at) / 1000;
    const rate = (key: string): Rate => {
      const n = b.counters.get(key)!;
      const o = a.counters.get(key);
      return {
        cps: per(n.newFlows, o?.newFlows, seconds),
        inPps: per(n.packets, o?.packets, seconds),
        inBps: per(n.bytes, o?.bytes, seconds),
      };
    };
    return {
      intervalSeconds: seconds,
      at: new Date(b.wall).toISOString(),
      services: this.services.map((s) => ({
        name: s.name,
        ...rate(s.name),
        backends: s.backends.map((x) => ({ key: x.key, name: x.name, ...rate(`${s.name}\0${x.key}`) })),
      })),
    };
  }
}
