// A deterministic clock for the VRRP state machine: timers fire only when the
// test advances time, in deadline order.
import { encodeAdvert, type Advert, type RxMeta } from '../../src/vrrp/codec';
import type { MachineConfig, Timers } from '../../src/vrrp/machine';

export class FakeClock implements Timers {
  t = 0;
  private seq = 0;
  private q: { at: number; id: number; fn: () => void }[] = [];

  now(): number {
    return this.t;
  }

  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.q.push({ at: this.t + Math.max(0, ms), id, fn });
    return id;
  }

  clear(h: unknown): void {
    this.q = this.q.filter((x) => x.id !== h);
  }

  /** Move time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.q.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.q[0];
      if (!next || next.at > end) break;
      this.q.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.q.length;
  }
}

export const VIP = '10.0.0.10';
export const ME = '10.0.0.2';

export function machineConfig(over: Partial<MachineConfig> = {}): MachineConfig {
  return {
    name: 'vi1',
    vrid: 51,
    version: 3,
    family: 4,
    priority: 100,
    intervalMs: 1000,
    preempt: true,
    preemptDelayMs: 0,
    primaryAddress: ME,
    vips: [VIP],
    unicastPeers: [],
    ...over,
  };
}

/** An advert from `src` as the machine's socket would hand it over. */
export function advertFrom(
  src: string,
  a: Partial<Advert> & { priority: number },
  version: 2 | 3 = 3,
): [Buffer, RxMeta] {
  const full: Advert = { version, vrid: 51, intervalMs: 1000, addresses: [VIP], ...a };
  const meta: RxMeta = { family: 4, src, dst: '224.0.0.18', ttl: 255 };
  return [encodeAdvert(full, { family: 4, src, dst: meta.dst }), meta];
}
