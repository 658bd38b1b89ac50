// The AF_PACKET generator's frames (director.ts buildFlowFrames): flow i must be exactly the frame
// the frame builder makes for that flow's source port and address, checksums included, as
// xdp_gen makes it under live frames; a flood stream (buildFloodFrames) is spoofed SYNs from
// random sources with the established flows' frames in it; and the ring refuses frames it cannot send.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildFloodFrames, buildFlowFrames, floodShape } from '../../scripts/bench/director';
import { buildFrame, TCP_ACK, TCP_SYN } from '../../scripts/bench/packet';
import { getNative } from '../../src/bpf/native';

const spec = {
  srcMac: '02:00:0a:ca:00:10',
  dstMac: '02:00:0a:ca:00:02',
  family: 4 as const,
  src: '10.202.0.10',
  dst: '10.202.0.100',
  proto: 'tcp' as const,
  dport: 3306,
  flags: TCP_ACK,
  minLength: 60,
  multipleOf: 8,
};
const addr = (word: number): string => `10.202.${(word >> 8) & 0xff}.${word & 0xff}`;

describe('AF_PACKET generator frames', () => {
  it('builds flow i as the frame of source port base + i % ports with valid checksums', () => {
    const t = buildFrame({ ...spec, sport: 10000 });
    const all = buildFlowFrames(t.bytes, { sportOff: t.sportOff, csumOff: t.csumOff, flows: 4096, basePort: 10000 });
    assert.equal(all.length, 4096 * t.bytes.length);
    for (const i of [0, 1, 77, 4095]) {
      const want = buildFrame({ ...spec, sport: 10000 + i }).bytes;
      assert.deepEqual(all.subarray(i * want.length, (i + 1) * want.length), want, `flow ${i}`);
    }
  });

  it('varies the source address past the port range and fixes the IPv4 header checksum too', () => {
    const t = buildFrame({ ...spec, sport: 10000 });
    const ports = 1000;
    const all = buildFlowFrames(t.bytes, {
      sportOff: t.sportOff,
      csumOff: t.csumOff,
      flows: 5000,
      basePort: 10000,
      ports,
      saddrOff: t.saddrOff,
      ipCsumOff: t.ipCsumOff,
    });
    const len = t.bytes.length;
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++)
      seen.add(all.subarray(i * len + t.saddrOff - 2, i * len + t.sportOff + 2).toString('hex'));
    assert.equal(seen.size, 5000, 'every flow is a distinct (source address, ports) tuple');
    for (const i of [999, 1000, 4999]) {
      const want = buildFrame({ ...spec, src: addr(0x000a + Math.floor(i / ports)), sport: 10000 + (i % ports) }).bytes;
      assert.deepEqual(all.subarray(i * len, (i + 1) * len), want, `flow ${i}`);
    }
  });

  it('builds a flood: one established frame in `every` (flow j mod established), the rest SYNs from distinct random sources in 198.18.0.0/15, checksums valid', () => {
    const syn = buildFrame({ ...spec, flags: TCP_SYN, sport: 10000 });
    const ack = buildFrame({ ...spec, sport: 10000 });
    const flood = { ack: ack.bytes, established: 100, every: 8, syns: 7000, seed: 26 };
    const o = {
      sportOff: syn.sportOff,
      csumOff: syn.csumOff,
      basePort: 10000,
      saddrOff: syn.saddrOff,
      ipCsumOff: syn.ipCsumOff,
    };
    const all = buildFloodFrames(syn.bytes, { ...o, flood });
    const shape = floodShape(flood);
    assert.deepEqual(shape, { frames: 8000, syns: 7000, established: 1000 });
    const len = syn.bytes.length;
    assert.equal(all.length, shape.frames * len);
    const sources = new Set<string>();
    for (let j = 0; j < shape.frames; j++) {
      const f = all.subarray(j * len, (j + 1) * len);
      if (j % 8 === 0) {
        const i = (j / 8) % 100;
        assert.deepEqual(f, buildFrame({ ...spec, sport: 10000 + i }).bytes, `frame ${j}: established flow ${i}`);
        continue;
      }
      const src = [...f.subarray(syn.saddrOff - 2, syn.saddrOff + 2)].join('.');
      const sport = f.readUInt16BE(syn.sportOff);
      assert.match(src, /^198\.1[89]\./, `frame ${j}`);
      // The frame builder's own checksums for that source and port: the incremental ones must match.
      assert.deepEqual(f, buildFrame({ ...spec, flags: TCP_SYN, src, sport }).bytes, `frame ${j}`);
      sources.add(`${src}:${sport}`);
    }
    assert.ok(sources.size > 6990, `${sources.size} distinct spoofed sources of 7000`);
    assert.deepEqual(buildFloodFrames(syn.bytes, { ...o, flood }), all, 'the same seed, the same flood');
    assert.throws(
      () => buildFloodFrames(syn.bytes, { ...o, flood: { ...flood, every: 1 } }),
      /every must be an integer of 2 or more/,
    );
  });

  it('starts the ring with a frame length it can hold and at least one frame, else says what it expected', () => {
    const { PacketTx } = getNative() as unknown as { PacketTx: new (o: Record<string, unknown>) => unknown };
    assert.throws(() => new PacketTx({ ifindex: 1, frames: Buffer.alloc(100), frameLen: 64 }), {
      name: 'TypeError',
      message:
        /frames: expected one or more frames of frameLen \(64\) bytes back to back, received Buffer of 100 bytes/,
    });
    assert.throws(() => new PacketTx({ ifindex: 1, frames: Buffer.alloc(8), frameLen: 8 }), {
      name: 'TypeError',
      message: /frameLen: expected a frame length from 14 to \d+/,
    });
  });
});
