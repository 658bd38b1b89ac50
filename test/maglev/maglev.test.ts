// Maglev table properties, after Katran's CHHelpersTest/MaglevHashTest: no holes,
// determinism (runs, processes, input order), weight proportionality, minimal
// disruption on small prime tables and on the default and large sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import {
  buildMaglev,
  isPrime,
  nextPrime,
  maglevPermutation,
  DEFAULT_RING_SIZE,
  MAX_RING_SIZE,
  MaglevBackend,
} from '../../src/maglev';
import { XdError } from '../../src/errors';

function backends(n: number, weight: (i: number) => number = () => 1): MaglevBackend[] {
  const out: MaglevBackend[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ id: i + 1, key: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:3306`, weight: weight(i) });
  }
  return out;
}

function counts(table: Uint32Array): Map<number, number> {
  const c = new Map<number, number>();
  for (const v of table) c.set(v, (c.get(v) ?? 0) + 1);
  return c;
}

function digest(table: Uint32Array): string {
  return createHash('sha256')
    .update(Buffer.from(table.buffer, table.byteOffset, table.byteLength))
    .digest('hex');
}

/** Mean and max of (slots that changed) / (slots the removed backend owned) over removals of the given ids. */
function disruption(all: MaglevBackend[], size: number, removeIds: number[]): { mean: number; max: number } {
  const full = buildMaglev(all, size);
  let sum = 0;
  let max = 0;
  for (const id of removeIds) {
    const without = buildMaglev(
      all.filter((b) => b.id !== id),
      size,
    );
    let own = 0;
    let changed = 0;
    for (let i = 0; i < size; i++) {
      if (full[i] === id) own++;
      if (full[i] !== without[i]) changed++;
    }
    const r = changed / own;
    sum += r;
    if (r > max) max = r;
  }
  return { mean: sum / removeIds.length, max };
}

test('the default table size is the prime 65537', () => {
  assert.equal(DEFAULT_RING_SIZE, 65537);
  assert.ok(isPrime(DEFAULT_RING_SIZE));
  assert.ok(isPrime(MAX_RING_SIZE));
  assert.ok(MAX_RING_SIZE >= 655373);
});

test('isPrime and nextPrime agree with known primes', () => {
  const primes = [2, 3, 5, 7, 11, 13, 251, 4093, 65537, 655373, 16777213];
  for (const p of primes) assert.ok(isPrime(p), `${p} is prime`);
  for (const c of [0, 1, 4, 9, 65535, 65536, 655371, 16777215, 2.5, -7]) assert.ok(!isPrime(c), `${c} is not prime`);
  assert.equal(nextPrime(65536), 65537);
  assert.equal(nextPrime(655360), 655373);
  assert.equal(nextPrime(250), 251);
});

test('every slot is filled at the default size for 1 to 1000 backends', () => {
  for (const n of [1, 2, 3, 10, 100, 1000]) {
    const t = buildMaglev(backends(n), DEFAULT_RING_SIZE);
    assert.equal(t.length, DEFAULT_RING_SIZE);
    assert.equal(t.indexOf(0), -1, `N=${n}: no empty slot`);
    assert.equal(counts(t).size, n, `N=${n}: every backend has slots`);
  }
});

test('small prime tables are filled and equal weights differ by at most one slot', () => {
  for (const [size, n] of [
    [7, 3],
    [13, 5],
    [13, 13],
    [251, 10],
    [251, 100],
  ] as const) {
    const t = buildMaglev(backends(n), size);
    assert.equal(t.indexOf(0), -1, `M=${size} N=${n}: no hole`);
    const c = [...counts(t).values()];
    assert.equal(c.length, n);
    assert.ok(Math.max(...c) - Math.min(...c) <= 1, `M=${size} N=${n}: counts ${c.join(',')}`);
  }
});

test('a table of size 2 works and a single backend takes every slot', () => {
  assert.deepEqual([...buildMaglev(backends(2), 2)].sort(), [1, 2]);
  assert.ok(buildMaglev([{ id: 42, key: 'x', weight: 3 }], 251).every((v) => v === 42));
});

test('a non-prime or out-of-range size is rejected with the nearest prime suggested', () => {
  assert.throws(
    () => buildMaglev(backends(3), 65536),
    (e: unknown) => {
      assert.ok(e instanceof XdError);
      assert.equal(e.code, 'XD_ERR_RING');
      assert.match(e.message, /table size 65536 is not prime.*use 65537/);
      return true;
    },
  );
  for (const bad of [0, 1, 4.5, -3, MAX_RING_SIZE + 2, NaN]) {
    assert.throws(() => buildMaglev(backends(3), bad), /XD_ERR_RING|table size/, `size ${bad}`);
  }
});

test('more weighted backends than slots is rejected', () => {
  assert.throws(() => buildMaglev(backends(8), 7), /8 weighted backends do not fit a table of 7 slots/);
});

test('bad ids, duplicate keys and bad weights are rejected', () => {
  assert.throws(() => buildMaglev([{ id: 0, key: 'a', weight: 1 }], 7), /id must be an integer from 1/);
  assert.throws(
    () =>
      buildMaglev(
        [
          { id: 1, key: 'a', weight: 1 },
          { id: 1, key: 'b', weight: 1 },
        ],
        7,
      ),
    /id 1 is given to two backends/,
  );
  assert.throws(
    () =>
      buildMaglev(
        [
          { id: 1, key: 'a', weight: 1 },
          { id: 2, key: 'a', weight: 1 },
        ],
        7,
      ),
    /key a appears twice/,
  );
  assert.throws(() => buildMaglev([{ id: 1, key: 'a', weight: 1.5 }], 7), /weight must be an integer from 0/);
  assert.throws(() => buildMaglev([{ id: 1, key: 'a', weight: -1 }], 7), /weight must be an integer from 0/);
});

test('a weight-0 backend takes no slot and the others fill the table', () => {
  const bs = backends(5, (i) => (i === 2 ? 0 : 1));
  const t = buildMaglev(bs, 251);
  assert.equal(counts(t).get(3), undefined);
  assert.equal(t.indexOf(0), -1);
});

test('no backend or only weight-0 backends give an all-zero table', () => {
  assert.ok(buildMaglev([], 251).every((v) => v === 0));
  assert.ok(
    buildMaglev(
      backends(4, () => 0),
      251,
    ).every((v) => v === 0),
  );
});

test('the table is identical across runs', () => {
  const bs = backends(100, (i) => 1 + (i % 4));
  assert.equal(digest(buildMaglev(bs, DEFAULT_RING_SIZE)), digest(buildMaglev(bs, DEFAULT_RING_SIZE)));
});

test('the table is identical in another process', () => {
  const bs = backends(100, (i) => 1 + (i % 4));
  const here = digest(buildMaglev(bs, DEFAULT_RING_SIZE));
  const mod = path.join(__dirname, '..', '..', 'src', 'maglev', 'index.js');
  const script = `
    const { buildMaglev } = require(${JSON.stringify(mod)});
    const bs = JSON.parse(process.argv[1]);
    const t = buildMaglev(bs, ${DEFAULT_RING_SIZE});
    process.stdout.write(require('node:crypto').createHash('sha256').update(Buffer.from(t.buffer)).digest('hex'));`;
  const there = execFileSync(process.execPath, ['-e', script, JSON.stringify(bs)], { encoding: 'utf8' });
  assert.equal(there, here);
});

test('the table does not depend on the order the backends are given in', () => {
  const bs = backends(50, (i) => 1 + (i % 3));
  const ref = digest(buildMaglev(bs, DEFAULT_RING_SIZE));
  assert.equal(digest(buildMaglev([...bs].reverse(), DEFAULT_RING_SIZE)), ref);
  // Deterministic shuffle (LCG) so a failure reproduces.
  let seed = 12345;
  const shuffled = [...bs];
  for (let i = shuffled.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  assert.equal(digest(buildMaglev(shuffled, DEFAULT_RING_SIZE)), ref);
});

test('slot shares are within 1% of the weight shares at M=65537 for several weight mixes', (t) => {
  const mixes: [string, number, (i: number) => number][] = [
    ['1:1:2', 3, (i) => (i === 2 ? 2 : 1)],
    ['1:100', 2, (i) => (i === 0 ? 1 : 100)],
    ['1..10', 10, (i) => i + 1],
    ['equal x100', 100, () => 1],
    ['1,2,3,4 x25', 100, (i) => 1 + (i % 4)],
    ['1 and 5, N=50', 50, (i) => (i % 2 ? 5 : 1)],
    ['1..100 N=100 weights 10..109', 100, (i) => 10 + i],
  ];
  let worst = 0;
  for (const [name, n, w] of mixes) {
    const bs = backends(n, w);
    const total = bs.reduce((s, b) => s + b.weight, 0);
    const c = counts(buildMaglev(bs, DEFAULT_RING_SIZE));
    for (const b of bs) {
      const want = (DEFAULT_RING_SIZE * b.weight) / total;
      const rel = Math.abs((c.get(b.id) ?? 0) - want) / want;
      if (rel > worst) worst = rel;
      assert.ok(
        rel <= 0.01,
        `${name}: backend ${b.id} weight ${b.weight} has ${c.get(b.id)} slots, expected ${want.toFixed(1)} (${(rel * 100).toFixed(2)}%)`,
      );
    }
  }
  t.diagnostic(`worst relative share error: ${(worst * 100).toFixed(3)}%`);
});

test('removing 1 of 10 backends at M=65537 moves at most 1.1x its own slots', (t) => {
  const bs = backends(10);
  const d = disruption(
    bs,
    DEFAULT_RING_SIZE,
    bs.map((b) => b.id),
  );
  t.diagnostic(`M=65537 N=10: mean ${d.mean.toFixed(3)}x, max ${d.max.toFixed(3)}x the minimum`);
  assert.ok(d.mean <= 1.1, `mean ${d.mean}`);
});

test('removing 1 of 100 backends at M=65537 moves at most 1.8x its own slots', (t) => {
  const bs = backends(100);
  const d = disruption(bs, DEFAULT_RING_SIZE, [1, 11, 23, 37, 50, 64, 77, 88, 95, 100]);
  t.diagnostic(`M=65537 N=100: mean ${d.mean.toFixed(3)}x, max ${d.max.toFixed(3)}x the minimum`);
  assert.ok(d.mean <= 1.8, `mean ${d.mean}`);
});

test('removing 1 of 100 backends at M=655373 moves at most 1.3x its own slots', (t) => {
  const bs = backends(100);
  const d = disruption(bs, 655373, [1, 37, 64, 100]);
  t.diagnostic(`M=655373 N=100: mean ${d.mean.toFixed(3)}x, max ${d.max.toFixed(3)}x the minimum`);
  assert.ok(d.mean <= 1.3, `mean ${d.mean}`);
});

test('a removed backend slots all go to remaining backends and no slot is left empty', () => {
  const bs = backends(10);
  const without = buildMaglev(
    bs.filter((b) => b.id !== 4),
    DEFAULT_RING_SIZE,
  );
  assert.equal(without.indexOf(0), -1);
  assert.equal(without.indexOf(4), -1);
});

test('adding a removed backend back restores the original table exactly', () => {
  const bs = backends(100, (i) => 1 + (i % 3));
  const ref = digest(buildMaglev(bs, DEFAULT_RING_SIZE));
  const without = buildMaglev(
    bs.filter((b) => b.id !== 42),
    DEFAULT_RING_SIZE,
  );
  assert.notEqual(digest(without), ref);
  const back = [...bs.filter((b) => b.id !== 42), bs[41]!];
  assert.equal(digest(buildMaglev(back, DEFAULT_RING_SIZE)), ref);
});

test('changing one weight moves slots only to or from that backend in most slots', () => {
  const bs = backends(10);
  const before = buildMaglev(bs, DEFAULT_RING_SIZE);
  const after = buildMaglev(
    bs.map((b) => (b.id === 5 ? { ...b, weight: 2 } : b)),
    DEFAULT_RING_SIZE,
  );
  const c = counts(after);
  // weight 2 of total 11: 2/11 of the table, within 1%
  const want = (DEFAULT_RING_SIZE * 2) / 11;
  assert.ok(Math.abs(c.get(5)! - want) / want <= 0.01);
  let changed = 0;
  let gained = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i]) changed++;
    if (before[i] !== 5 && after[i] === 5) gained++;
  }
  assert.ok(changed <= gained * 1.5, `changed ${changed}, gained ${gained}`);
});

test('M=65537 with 1000 backends builds quickly', (t) => {
  const bs = backends(1000);
  buildMaglev(bs, DEFAULT_RING_SIZE); // warm the JIT, as a running daemon is
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    buildMaglev(bs, DEFAULT_RING_SIZE);
    runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  runs.sort((a, b) => a - b);
  t.diagnostic(
    `M=65537 N=1000 build: median ${runs[2]!.toFixed(1)} ms (min ${runs[0]!.toFixed(1)}, max ${runs[4]!.toFixed(1)})`,
  );
  // Generous bound on a shared 2-vCPU machine; catches an accidental O(M*N) or per-slot allocation.
  assert.ok(runs[2]! < 250, `median ${runs[2]} ms`);
});

/** Katran MaglevHashV2 written the straightforward way (round by round, credit per backend). */
function referenceMaglev(bs: MaglevBackend[], size: number): Uint32Array {
  const act = bs.filter((b) => b.weight > 0).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const table = new Uint32Array(size);
  if (act.length === 0) return table;
  const perm = act.map((b) => maglevPermutation(b.key, size));
  const nextIdx = act.map(() => 0); // j: the j-th entry of the permutation, (offset + j * skip) % M
  const credit = act.map(() => 0);
  const maxW = Math.max(...act.map((b) => b.weight));
  let filled = 0;
  for (;;) {
    for (let i = 0; i < act.length; i++) {
      credit[i] += act[i]!.weight;
      if (credit[i]! < maxW) continue;
      credit[i] -= maxW;
      let c: number;
      do {
        c = (perm[i]!.offset + nextIdx[i]! * perm[i]!.skip) % size;
        nextIdx[i]!++;
      } while (table[c] !== 0);
      table[c] = act[i]!.id;
      if (++filled === size) return table;
    }
  }
}

test('the table equals a straightforward round-by-round reference for equal and skewed weights', () => {
  const mixes: [number, (i: number) => number][] = [
    [3, () => 1],
    [3, (i) => (i === 2 ? 2 : 1)],
    [10, (i) => i + 1],
    [7, (i) => [0, 3, 5, 1, 0, 9, 2][i]!],
    [50, (i) => 1 + (i % 4)],
    [20, (i) => (i === 0 ? 1000 : 1)],
    [5, (i) => [65535, 1, 2, 3, 65534][i]!],
    [30, (i) => (i === 0 ? 500 : i === 1 ? 0 : 1 + (i % 3))],
    [12, (i) => (i < 2 ? 997 : 3 + (i % 5))], // heap path (skewed)
  ];
  for (const size of [251, 4093, DEFAULT_RING_SIZE]) {
    for (const [n, w] of mixes) {
      const bs = backends(n, w);
      assert.equal(digest(buildMaglev(bs, size)), digest(referenceMaglev(bs, size)), `M=${size} N=${n}`);
    }
  }
});

test('very skewed weights still build quickly', (t) => {
  const bs = backends(1000, (i) => (i === 0 ? 65535 : 1));
  const t0 = process.hrtime.bigint();
  const table = buildMaglev(bs, DEFAULT_RING_SIZE);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  t.diagnostic(`M=65537 N=1000 weights 65535:1x999: ${ms.toFixed(1)} ms`);
  assert.equal(table.indexOf(0), -1);
  // Each light backend's fair share is below one slot (65537/66534): it gets 0 or 1.
  for (const [id, c] of counts(table)) if (id !== 1) assert.ok(c <= 1, `backend ${id}: ${c} slots`);
  assert.ok(ms < 1000, `${ms} ms`);
});
