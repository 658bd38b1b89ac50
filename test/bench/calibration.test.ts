// The two helper programs next to xdirector: xdp_pass (peer-side XDP_PASS for native veth XDP_TX,
// and the no-op of the benchmarks) and xdp_tx_noop (the DR forward's cost ceiling: MAC rewrite
// from a one-slot array + XDP_TX), run through BPF_PROG_TEST_RUN.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as pk from '../lib/packet';
import { BpfObject, testRun, u32, raw, getNative } from '../../src/bpf';

const DIST_BPF = path.resolve(__dirname, '../../bpf/tools');
const XDP = getNative().constants;

const frame = pk.ether(
  { src: '02:00:00:00:00:10', dst: '02:00:00:00:00:02' },
  pk.ipv4({ src: '10.200.0.10', dst: '10.200.0.100' }, pk.tcp({ sport: 40000, dport: 3306, flags: 'S' })),
);

const opened: BpfObject[] = [];
after(() => {
  for (const o of opened) o.close();
});

async function load(name: string): Promise<BpfObject> {
  const o = await BpfObject.load(path.join(DIST_BPF, `${name}.bpf.o`));
  opened.push(o);
  return o;
}

test('xdp_pass returns XDP_PASS and leaves the frame unchanged', async () => {
  const o = await load('xdp_pass');
  const r = testRun(o.program('xdp_pass'), { data: frame });
  assert.equal(r.retval, XDP.XDP_PASS);
  assert.equal(r.dataOut.toString('hex'), frame.toString('hex'));
});

test('xdp_tx_noop moves the old destination MAC to the source, writes the mapped MAC and returns XDP_TX', async () => {
  const o = await load('xdp_tx_noop');
  const maps = o.maps().filter((m) => !m.internal);
  assert.equal(maps.length, 1, 'one map: the destination MAC');
  const m = o.map(maps[0]!.name, u32, raw(8));
  m.update(0, Buffer.concat([pk.macBytes('02:00:00:00:01:01'), Buffer.alloc(2)]));
  const r = testRun(o.program('xdp_tx_noop'), { data: frame });
  assert.equal(r.retval, XDP.XDP_TX);
  const expected = pk.ether(
    { src: '02:00:00:00:00:02', dst: '02:00:00:00:01:01' },
    pk.ipv4({ src: '10.200.0.10', dst: '10.200.0.100' }, pk.tcp({ sport: 40000, dport: 3306, flags: 'S' })),
  );
  assert.equal(r.dataOut.toString('hex'), expected.toString('hex'));
});
