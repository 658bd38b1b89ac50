// The XDP program's call chains against the stack limit of the oldest kernel it must load on.
//
// Debian 12's Linux 6.1 rounds each BPF-to-BPF frame up to 32 bytes and refuses a program whose
// call chain adds up to more than 512 ("combined stack size of N calls is 544"); this host's
// kernel does not round, so only the VM harness (test/vm) would see such a chain, minutes later.
// Here the object is loaded on the host with the verifier's summary log (each subprogram's stack
// depth), its call graph read back from the translated program (bpftool prog dump xlated), and
// every chain from the entry point added up as 6.1 does (scripts/shape.ts, `shape.js stack`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { BpfObject } from '../../src/bpf/object';
import {
  MAX_BPF_STACK,
  formatChain,
  loadWithStats,
  parseStackDepths,
  parseXlated,
  programChains,
  stackChains,
} from '../../scripts/shape';

const root = path.resolve(__dirname, '../../..');
const OBJECT = path.join(root, 'dist/bpf/xdirector.bpf.o');

let obj: BpfObject | undefined;

before(async () => {
  // Builds only if a source changed (make is idempotent).
  execFileSync('make', ['-s', '-C', path.join(root, 'bpf')], { stdio: 'pipe' });
  obj = await loadWithStats(OBJECT);
});

after(() => {
  obj?.close();
});

test("every call chain of the XDP program fits 6.1's 512-byte stack, each frame rounded up to 32", (t) => {
  const [{ program, chains }] = programChains(obj!);
  assert.equal(program, 'xdirector');
  assert.ok(
    chains.length > 1,
    `expected the entry point to call subprograms, got ${chains.map(formatChain).join('; ')}`,
  );
  for (const c of chains.slice(0, 5)) t.diagnostic(formatChain(c));
  const over = chains.filter((c) => c.total > MAX_BPF_STACK);
  assert.deepEqual(
    over.map(formatChain),
    [],
    `call chains over ${MAX_BPF_STACK} bytes as Linux 6.1 counts them (it refuses the program): make a deep frame smaller, or call the stage from higher up so it does not nest (bpf/README.md)`,
  );
});

test('the chain Debian 12 refused (xdirector_full with sync_report inlined) is found 32 bytes over', () => {
  // 6.1 said "combined stack size of 4 calls is 544" for that build: its xdirector_full frame,
  // rounded, was the 256 bytes the sum leaves (now 6.18's depths of the other frames).
  const depths = new Map([
    ['xdirector', 40],
    ['xdirector_full', 256],
    ['tunnel_forward', 192],
    ['xd_rate_admit', 8],
    ['fast_tunnel', 56],
  ]);
  const calls = new Map([
    ['xdirector', new Set(['xdirector_full', 'fast_tunnel'])],
    ['xdirector_full', new Set(['tunnel_forward'])],
    ['tunnel_forward', new Set(['xd_rate_admit'])],
    ['fast_tunnel', new Set(['tunnel_forward'])],
  ]);
  const chains = stackChains(depths, calls, 'xdirector');
  assert.deepEqual(chains.map(formatChain), [
    '544 = xdirector 40->64 + xdirector_full 256 + tunnel_forward 192 + xd_rate_admit 8->32',
    '352 = xdirector 40->64 + fast_tunnel 56->64 + tunnel_forward 192 + xd_rate_admit 8->32',
  ]);
});

test("the verifier's stack depths and bpftool's subprograms and calls are read from their own text", () => {
  assert.deepEqual(parseStackDepths('verification time 1 usec\nstack depth 40+136+8\nprocessed 9 insns'), [40, 136, 8]);
  assert.throws(() => parseStackDepths('processed 9 insns'), /no "stack depth" line/);
  const xlated = [
    'int xdirector(struct xdp_md * ctx):',
    '; int xdirector(struct xdp_md *ctx)',
    '   0: (bf) r6 = r1',
    '  12: (85) call pc+228#bpf_prog_347bd22436f07bf7_xdirector_full',
    'int xdirector_full(struct xdp_md * ctx):',
    ' 240: (85) call bpf_map_lookup_elem#1',
    ' 250: (85) call pc+40#bpf_prog_0f3e190b2c6edaa8_tunnel_forward',
    'int tunnel_forward(struct xdp_md * ctx, __u32 be_idx, const struct xd_flow_key * fk, __u32 l2len, __u32 * reason):',
    ' 290: (95) exit',
  ].join('\n');
  const { funcs, calls } = parseXlated(xlated);
  assert.deepEqual(funcs, ['xdirector', 'xdirector_full', 'tunnel_forward']);
  assert.deepEqual(
    [...calls].map(([f, c]) => [f, [...c]]),
    [
      ['xdirector', ['xdirector_full']],
      ['xdirector_full', ['tunnel_forward']],
      ['tunnel_forward', []],
    ],
  );
});

test('a recursive call chain is an error, not an endless walk', () => {
  assert.throws(
    () =>
      stackChains(
        new Map([
          ['a', 8],
          ['b', 8],
        ]),
        new Map([
          ['a', new Set(['b'])],
          ['b', new Set(['a'])],
        ]),
        'a',
      ),
    /recursive call chain: a -> b -> a/,
  );
});
