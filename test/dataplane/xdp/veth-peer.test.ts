// The silent black hole on veth: native XDP_TX on a veth is delivered only if the peer runs a
// native XDP program; without one the driver drops every forwarded frame and counts it in
// rx_queue_<n>_xdp_tx_errors. XdpDataplane.open() finds the peer (IFLA_LINK in the namespace of
// IFLA_LINK_NETNSID, read with IFLA_TARGET_NETNSID) and refuses native mode (dataplane: xdp) or
// falls back to generic (dataplane: auto); status carries the driver's XDP TX error counters;
// pollTxErrors() raises an alert when forwarded frames turn into TX errors at run time.
//
// Resources (prefix xvp<pid>): namespace xvp<pid> holding the peer xvp<pid>b, the veth end
// xvp<pid>a here, pins under /sys/fs/bpf/xvp<pid>. Removed in after(). Frames are injected from
// the peer's side with an AF_PACKET socket (python3 in the namespace), so they arrive on
// xvp<pid>a, run through the director's program and are sent back to the peer with XDP_TX.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import * as pk from '../../lib/packet';
import { xdp } from '../../../src/bpf';
import { XdpDataplane, type XdpOptions } from '../../../src/dataplane/xdp/dataplane';
import type { DesiredState } from '../../../src/state/types';
import { XdError } from '../../../src/errors';
import { driverStats, xdpTxErrors } from '../../../src/net/ethtool';
import { vethPeer } from '../../../src/net/veth';
import { renderMetrics } from '../../../src/daemon/metrics';
import { formatStatus } from '../../../src/cli/format';
import { daemonStatus } from '../../lib/status';

const PREFIX = `xvp${process.pid}`;
const NS = PREFIX;
const IF = `${PREFIX}a`;
const PEER = `${PREFIX}b`;
const IF_MAC = '02:00:00:00:00:01';
const PEER_MAC = '02:00:00:00:00:02';
const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
const OBJ = path.resolve(__dirname, '../../../bpf/xdirector.bpf.o');
const PASS_OBJ = path.resolve(__dirname, '../../../bpf/tools/xdp_pass.bpf.o');

const logLines: string[] = [];
const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });

function opts(over: Partial<XdpOptions> = {}): XdpOptions {
  return {
    instance: 'i1',
    ifname: IF,
    mode: 'native',
    pinDir: PIN_ROOT,
    ringMax: 251,
    maxServices: 4,
    maxBackends: 16,
    flowTableSize: 1024,
    objectPath: OBJ,
    log,
    ...over,
  };
}

const VIP = '10.202.0.100';
const STATE: DesiredState = {
  services: [
    {
      name: 'rw',
      vip: VIP,
      port: 3306,
      proto: 'tcp',
      family: 4,
      scheduler: 'maglev',
      ring: { kind: 'maglev', size: 251 },
      onEmpty: 'pass',
      backends: [
        {
          key: '10.202.0.11:3306',
          name: 'rs1',
          address: '10.202.0.11',
          port: 3306,
          family: 4,
          weight: 1,
          state: 'active',
          mac: '02:00:00:00:01:11',
        },
      ],
    },
  ],
};

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}
const peerXdp = (on: boolean): void => {
  sh('ip', ['-n', NS, 'link', 'set', 'dev', PEER, 'xdpdrv', ...(on ? ['obj', PASS_OBJ, 'sec', 'xdp'] : ['off'])]);
};
/** `n` TCP SYNs to the VIP from distinct ports, sent into the peer so they arrive on IF. */
function sendFromPeer(n: number): void {
  const frames = Array.from({ length: n }, (_, i) =>
    pk
      .ether(
        { src: PEER_MAC, dst: IF_MAC },
        pk.ipv4({ src: '10.202.0.2', dst: VIP }, pk.tcp({ sport: 20000 + i, dport: 3306, flags: 'S' })),
      )
      .toString('hex'),
  );
  const py = `import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\nfor h in sys.argv[2:]: s.send(bytes.fromhex(h))\n`;
  sh('ip', ['netns', 'exec', NS, 'python3', '-c', py, PEER, ...frames]);
}
/** A driver counter of the peer, read in its namespace (ethtool -S). */
function peerCounter(name: string): number {
  const m = new RegExp(`^\\s*${name}: (\\d+)$`, 'm').exec(sh('ip', ['netns', 'exec', NS, 'ethtool', '-S', PEER]));
  assert.ok(m, `${PEER} reports ${name}`);
  return Number(m[1]);
}
/** Waits (bounded) until `fn` is true: veth delivers through NAPI, a moment after send() returns. */
async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

let dp: XdpDataplane | undefined;

before(() => {
  if (!fs.existsSync('/sys/fs/bpf')) sh('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', [
    'link',
    'add',
    IF,
    'address',
    IF_MAC,
    'type',
    'veth',
    'peer',
    'name',
    PEER,
    'address',
    PEER_MAC,
    'netns',
    NS,
  ]);
  sh('ip', ['link', 'set', IF, 'up']);
  sh('ip', ['-n', NS, 'link', 'set', PEER, 'up']);
  fs.mkdirSync(PIN_ROOT);
});

afterEach(async () => {
  await dp?.close({ keepState: false });
  dp = undefined;
  try {
    peerXdp(false);
  } catch {
    /* none attached */
  }
});

after(() => {
  try {
    XdpDataplane.detachInstance(PIN_ROOT, 'i1', IF, log);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['link', 'del', IF]);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    /* gone */
  }
  fs.rmSync(PIN_ROOT, { recursive: true, force: true });
});

test('the veth peer in another namespace is found with its native XDP program id', async () => {
  const none = await vethPeer(IF);
  assert.ok(none, `${IF} is a veth`);
  assert.equal(none.name, PEER);
  assert.notEqual(none.netnsid, undefined, 'the peer is in another namespace');
  assert.equal(none.nativeProgId, 0);
  peerXdp(true);
  const withProg = await vethPeer(IF);
  assert.ok(withProg && withProg.nativeProgId > 0, 'xdp_pass on the peer is seen');
  assert.equal(await vethPeer('lo'), undefined, 'lo is not a veth');
});

test('native mode on a veth whose peer runs no XDP program is refused with the fix, leaving nothing attached or pinned', async () => {
  let err: unknown;
  try {
    dp = await XdpDataplane.open(opts());
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof XdError, `expected a refusal, got ${String(err)}`);
  assert.equal(err.code, 'XD_ERR_XDP_VETH_PEER');
  assert.match(
    err.message,
    new RegExp(
      `${IF} is a veth whose peer ${PEER} \\(in the network namespace with id \\d+\\) runs no native XDP program`,
    ),
  );
  assert.match(
    err.message,
    /fix: attach an XDP program to the peer in native mode .*xdp_pass.*, or set xdp\.mode: generic/,
  );
  const q = xdp.query(IF);
  assert.deepEqual([q.programs.native, q.programs.generic], [0, 0], 'nothing attached');
  assert.deepEqual(fs.readdirSync(PIN_ROOT), [], 'nothing pinned');
});

test('with dataplane auto the same veth falls back to generic mode with a warning', async () => {
  logLines.length = 0;
  dp = await XdpDataplane.open(opts({ vethPeerWithoutXdp: 'generic' }));
  const q = xdp.query(IF);
  assert.deepEqual([q.programs.native, q.programs.generic], [0, dp.programId]);
  assert.ok(
    logLines.some((l) => l.includes('"level":40') && l.includes('attaching in generic mode instead')),
    'a warning says why',
  );
  assert.equal((await dp.status()).detail.mode, 'generic');
});

test('native mode attaches when the peer runs xdp_pass, and forwarded frames reach the peer with no driver TX errors', async () => {
  peerXdp(true);
  dp = await XdpDataplane.open(opts());
  await dp.apply(STATE);
  assert.equal((await dp.status()).detail.mode, 'native');
  dp.pollTxErrors();
  const before = peerCounter('rx_queue_0_xdp_packets');
  sendFromPeer(20);
  await until(
    () => peerCounter('rx_queue_0_xdp_packets') - before >= 20,
    'the peer program to see 20 forwarded frames',
  );
  const r = dp.pollTxErrors();
  assert.equal(r.forwarded, 20);
  assert.equal(r.txErrors, 0);
  assert.equal(r.alert, undefined);
});

test('status and metrics carry the driver XDP TX error counters, and an alert when forwarded frames turn into TX errors', async () => {
  peerXdp(true);
  dp = await XdpDataplane.open(opts());
  await dp.apply(STATE);
  dp.pollTxErrors(); // baseline
  const st0 = xdpTxErrors(driverStats(IF)!);
  // The peer loses its program while the director keeps forwarding natively: the black hole.
  peerXdp(false);
  logLines.length = 0;
  sendFromPeer(30);
  await until(
    () => xdpTxErrors(driverStats(IF)!).txErrors - st0.txErrors >= 30,
    `30 rx_queue_0_xdp_tx_errors on ${IF}`,
  );
  const r = dp.pollTxErrors();
  assert.equal(r.forwarded, 30);
  assert.equal(r.txErrors, 30);
  assert.match(
    r.alert ?? '',
    new RegExp(
      `XDP forwarding on ${IF} is failing: the program forwarded 30 frames since the last check and the veth driver counted 30 XDP TX errors \\(rx_queue_0_xdp_tx_errors`,
    ),
  );
  assert.ok(
    logLines.some((l) => l.includes('"level":50') && l.includes('ALERT XDP forwarding')),
    'the alert is logged as an error',
  );

  const st = await dp.status();
  const drv = st.detail.driverTxErrors;
  assert.ok(drv && 'driver' in drv, 'the veth driver reports XDP TX error counters');
  assert.equal(drv.driver, 'veth');
  assert.equal(drv.txErrors, st0.txErrors + 30);
  assert.ok(drv.counters.includes('rx_queue_0_xdp_tx_errors') && drv.counters.includes('tx_queue_0_xdp_xmit_errors'));
  assert.equal(st.detail.txAlert, r.alert);
  const metrics = renderMetrics(daemonStatus(st));
  assert.match(
    metrics,
    new RegExp(`^xdirector_xdp_driver_tx_errors_total\\{interface="${IF}",kind="tx"\\} ${st0.txErrors + 30}$`, 'm'),
  );
  assert.match(metrics, new RegExp(`^xdirector_xdp_tx_failing\\{interface="${IF}"\\} 1$`, 'm'));
  assert.match(formatStatus(daemonStatus(st, { instance: 'i1', pid: 1 })), /ALERT: XDP forwarding on .* is failing/);

  // The peer gets its program back: the next poll with clean forwarding clears the alert.
  peerXdp(true);
  const seen = peerCounter('rx_queue_0_xdp_packets');
  sendFromPeer(5);
  await until(() => peerCounter('rx_queue_0_xdp_packets') - seen >= 5, 'the peer program to see 5 forwarded frames');
  const ok = dp.pollTxErrors();
  assert.deepEqual([ok.forwarded, ok.txErrors, ok.alert], [5, 0, undefined], 'cleared');
  assert.equal((await dp.status()).detail.txAlert, undefined);
});
