// Fuzz: random and mutated datagrams through the IPv4 splitter, the decoder and
// the state machine. Nothing throws, nothing changes state, everything is counted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DROP_REASONS, decodeAdvert, encodeAdvert, encodeIPv4, splitIPv4 } from '../../src/vrrp/codec';
import { VrrpMachine } from '../../src/vrrp/machine';
import { FakeClock, machineConfig } from './fake-clock';

/** xorshift32: reproducible runs (the seed is in the test name). */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const SEED = 0x5eed4;
const N = 20_000;

function feed(version: 2 | 3, startMaster: boolean, packets: Buffer[]) {
  const clock = new FakeClock();
  const cfg = machineConfig({
    version,
    priority: startMaster ? 255 : 100,
    password: version === 2 ? 'secret' : undefined,
  });
  const m = new VrrpMachine(cfg, { send: () => {}, transition: () => {} }, clock);
  m.start();
  const state = m.state;
  const deadline = m.deadline;
  let split = 0;
  for (const p of packets) {
    const r = splitIPv4(p);
    if (!r.ok) {
      split++;
      continue;
    }
    m.handlePacket(r.payload, r.meta);
    assert.equal(m.state, state);
  }
  return { m, state, deadline, split };
}

describe('VRRP fuzz', () => {
  it(`survives ${N} random datagrams (seed ${SEED.toString(16)}) without throwing or changing state, counting each`, () => {
    const r = rng(SEED);
    const packets: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const len = Math.floor(r() * 80);
      const b = Buffer.alloc(len);
      for (let k = 0; k < len; k++) b[k] = Math.floor(r() * 256);
      // Half of them get a plausible IPv4/VRRP header so they reach the decoder.
      if (i % 2 === 0 && len >= 20) {
        const body = b.subarray(20);
        packets.push(encodeIPv4(body, '10.0.0.9', '224.0.0.18', r() < 0.8 ? 255 : Math.floor(r() * 256)));
      } else packets.push(b);
    }
    for (const version of [2, 3] as const) {
      for (const master of [false, true]) {
        const { m, state, deadline, split } = feed(version, master, packets);
        assert.equal(m.state, state);
        assert.equal(m.deadline, deadline, 'the running timer was never re-armed');
        const c = m.counters;
        const dropped = DROP_REASONS.reduce((s, k) => s + c.dropped[k], 0);
        assert.equal(c.received, N - split);
        assert.equal(dropped + c.accepted, c.received);
        assert.equal(c.accepted, 0);
      }
    }
  });

  it(`survives ${N} mutated valid adverts (seed ${(SEED + 1).toString(16)}) without throwing or changing state, counting each`, () => {
    const r = rng(SEED + 1);
    const templates = [
      encodeIPv4(
        encodeAdvert(
          { version: 3, vrid: 51, priority: 200, intervalMs: 1000, addresses: ['10.0.0.10'] },
          { family: 4, src: '10.0.0.9', dst: '224.0.0.18' },
        ),
        '10.0.0.9',
        '224.0.0.18',
      ),
      encodeIPv4(
        encodeAdvert(
          { version: 2, vrid: 51, priority: 200, intervalMs: 1000, addresses: ['10.0.0.10'] },
          { family: 4, password: 'secret' },
        ),
        '10.0.0.9',
        '224.0.0.18',
      ),
    ];
    const packets: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const t = Buffer.from(templates[i % 2]!);
      const kind = Math.floor(r() * 4);
      let p: Buffer;
      if (kind === 0) {
        // flip 1–4 bytes in the VRRP part (the checksum must catch it)
        p = t;
        const flips = 1 + Math.floor(r() * 4);
        for (let k = 0; k < flips; k++) p[20 + Math.floor(r() * (p.length - 20))] ^= 1 + Math.floor(r() * 255);
      } else if (kind === 1)
        p = t.subarray(0, Math.floor(r() * t.length)); // truncate
      else if (kind === 2) {
        p = t;
        p[8] = Math.floor(r() * 255); // TTL other than 255
      } else {
        p = Buffer.concat([t, Buffer.alloc(1 + Math.floor(r() * 16), Math.floor(r() * 256))]); // trailing junk
        p.writeUInt16BE(p.length, 2);
      }
      packets.push(p);
    }
    for (const version of [2, 3] as const) {
      for (const master of [false, true]) {
        const { m, state, split } = feed(version, master, packets);
        const c = m.counters;
        assert.equal(m.state, state);
        const dropped = DROP_REASONS.reduce((s, k) => s + c.dropped[k], 0);
        assert.equal(dropped + c.accepted, c.received);
        assert.equal(c.received + split, N);
        assert.ok(c.dropped.checksum > 0 && c.dropped.ttl > 0, 'the mutations hit several reasons');
      }
    }
  });

  it('never throws from decodeAdvert on any byte string up to 64 bytes in an exhaustive-ish sweep of header bytes', () => {
    const meta = { family: 4 as const, src: '10.0.0.9', dst: '224.0.0.18', ttl: 255 };
    let n = 0;
    for (let b0 = 0; b0 < 256; b0++)
      for (let count = 0; count < 256; count += 17)
        for (let len = 0; len <= 64; len += 7) {
          const b = Buffer.alloc(len, 0x5a);
          if (len > 0) b[0] = b0;
          if (len > 3) b[3] = count;
          const r = decodeAdvert(b, meta, { vrid: 0x5a, version: 3 });
          assert.equal(typeof r.ok, 'boolean');
          n++;
        }
    assert.ok(n > 10_000);
  });
});
