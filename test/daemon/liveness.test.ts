// liveness.ts with a hand-driven clock: what withdraws the director and what withholds the
// systemd watchdog, and when they come back. Plus the withdrawal in servableVips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Liveness, STALE_FLOOR_MS, TX_QUIET_MS } from '../../src/daemon/liveness';
import { servableVips } from '../../src/bgp/servable';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

test("the staleness limit is max(3 x interval, one round's budget + floor)", () => {
  assert.equal(
    new Liveness({ healthIntervalMs: 1000, healthRoundMs: 1900, bgp: false }).limitMs,
    1900 + STALE_FLOOR_MS,
  );
  assert.equal(new Liveness({ healthIntervalMs: 10_000, healthRoundMs: 1900, bgp: false }).limitMs, 30_000);
  assert.equal(new Liveness({ healthIntervalMs: null, bgp: false }).limitMs, STALE_FLOOR_MS);
});

test('health rounds that keep completing keep the director serving and the watchdog fed', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: 1000, healthRoundMs: 1900, bgp: true, now: c.now });
  for (let i = 0; i < 30; i++) {
    c.advance(1000);
    l.healthRound();
    l.bgpTurned();
  }
  assert.equal(l.cannotServe(), undefined);
  assert.equal(l.stalled(), undefined);
});

test('a health round that hangs makes the snapshot stale past the limit: cannot serve, watchdog withheld; the next round ends it', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: 1000, healthRoundMs: 1900, bgp: true, now: c.now });
  l.healthRound();
  c.advance(l.limitMs - 100);
  l.bgpTurned();
  c.advance(100);
  l.bgpTurned();
  assert.equal(l.cannotServe(), undefined, 'exactly at the limit it still serves');
  c.advance(1);
  assert.match(l.cannotServe()!, /^the health snapshot is 6\.9 s old \(no completed check round within 6\.9 s\)/);
  assert.equal(l.stalled(), l.cannotServe());
  assert.equal(l.status().healthAgeMs, 6901);
  l.healthRound();
  assert.equal(l.cannotServe(), undefined);
  assert.equal(l.stalled(), undefined);
});

test('the alert is raised once when the director cannot serve, follows the reason while it stays, and is cleared once', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: 1000, healthRoundMs: 1900, bgp: false, now: c.now });
  assert.equal(l.checkAlert(), undefined);
  assert.equal(l.alert, undefined);
  c.advance(l.limitMs + 1);
  const raised = l.checkAlert();
  assert.ok(raised && raised !== 'cleared', 'raised');
  assert.match(raised.why, /^the health snapshot is 6\.9 s old/);
  assert.equal(raised.raised, `this director cannot serve: ${raised.why}`);
  assert.equal(l.alert, raised.raised);
  c.advance(1000);
  assert.equal(l.checkAlert(), undefined, 'still raised: no second log line');
  assert.match(l.alert!, /^this director cannot serve: the health snapshot is 7\.9 s old/);
  l.healthRound();
  assert.equal(l.checkAlert(), 'cleared');
  assert.equal(l.alert, undefined);
  assert.equal(l.checkAlert(), undefined);
});

test('without health checks there is no snapshot to go stale', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: null, bgp: false, now: c.now });
  c.advance(3_600_000);
  assert.equal(l.cannotServe(), undefined);
  assert.equal(l.status().healthAgeMs, null);
});

test('a reconcile that does not end within the limit is a stall; one that ends is not', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: null, bgp: false, now: c.now });
  l.reconcileStarted();
  c.advance(STALE_FLOOR_MS);
  l.reconcileEnded();
  c.advance(STALE_FLOOR_MS * 10);
  assert.equal(l.stalled(), undefined);
  l.reconcileStarted();
  c.advance(STALE_FLOOR_MS + 1);
  assert.match(l.stalled()!, /a reconcile has been running for 5\.0 s/);
  assert.match(l.cannotServe()!, /a reconcile has been running/);
});

test('a BGP sync loop that stops turning withholds the watchdog but does not by itself withdraw', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: null, bgp: true, now: c.now });
  c.advance(STALE_FLOOR_MS + 1);
  assert.match(l.stalled()!, /BGP speaker's sync loop has not turned for 5\.0 s/);
  assert.equal(l.cannotServe(), undefined);
  l.bgpTurned();
  assert.equal(l.stalled(), undefined);
});

test('rising XDP TX errors withdraw while they rise and for TX_QUIET_MS after the last rise; they never withhold the watchdog', () => {
  const c = clock();
  const l = new Liveness({ healthIntervalMs: null, bgp: false, now: c.now });
  l.txErrors(0);
  assert.equal(l.cannotServe(), undefined);
  l.txErrors(12);
  assert.match(
    l.cannotServe()!,
    /the driver is dropping forwarded frames \(XDP TX errors rose 0\.0 s ago, last poll \+12\)/,
  );
  assert.equal(l.stalled(), undefined);
  for (let i = 0; i < 5; i++) {
    c.advance(2000);
    l.txErrors(3);
  }
  assert.equal(l.status().txErrorsRising, true);
  c.advance(2000);
  l.txErrors(0);
  c.advance(TX_QUIET_MS - 2001);
  l.txErrors(0);
  assert.notEqual(l.cannotServe(), undefined, 'still within the quiet period');
  c.advance(1);
  assert.equal(l.cannotServe(), undefined);
  assert.equal(l.status().txErrorsRising, false);
});

test('servableVips withdraws every VIP with the reason when the director cannot serve, before any other reason', () => {
  const backends = [{ name: 'r1', state: 'active', weight: 1, mac: '02:00:00:00:00:01' }] as never;
  const s = servableVips({
    announce: ['10.0.0.1', '10.0.0.2'],
    services: [
      { name: 'a', vip: '10.0.0.1', backends },
      { name: 'b', vip: '10.0.0.2', backends },
    ],
    dataplaneReady: false,
    cannotServe: 'the health snapshot is 9.0 s old',
  });
  assert.equal(s.servable.size, 0);
  assert.deepEqual(s.reasons, {
    '10.0.0.1': 'this director cannot serve: the health snapshot is 9.0 s old',
    '10.0.0.2': 'this director cannot serve: the health snapshot is 9.0 s old',
  });
  const ok = servableVips({
    announce: ['10.0.0.1'],
    services: [{ name: 'a', vip: '10.0.0.1', backends }],
    dataplaneReady: true,
  });
  assert.deepEqual([...ok.servable], ['10.0.0.1']);
});

test("VRRP: every instance has a `director` tracker the daemon fails when it cannot serve: Fault by default, track.xdp's weight when set", async () => {
  const { parseConfig } = await import('../../src/config');
  const { VrrpInstance } = await import('../../src/vrrp/instance');
  const { Tracker, effectivePriority } = await import('../../src/vrrp/track');
  const { createLogger } = await import('../../src/log');
  const yaml = (track: string) => `instance: lab
interface: lo
services: []
vrrp:
  - { name: VI_1, vrid: 51, priority: 150, vips: [10.0.0.10/24]${track} }
`;
  const log = createLogger({ level: 'silent' });
  for (const [track, want] of [
    ['', { priority: 150, fault: true }],
    [', track: { xdp: { weight: -100 } }', { priority: 50, fault: false }],
  ] as const) {
    const cfg = parseConfig(yaml(track), 'lab.yaml', { checkFiles: false }).vrrp[0]!;
    const inst = new VrrpInstance(cfg, { log });
    const prio = () => {
      const ts = inst.status().trackers.map((t) => {
        const x = new Tracker({ name: t.name, weight: t.weight });
        x.set(t.ok);
        return x;
      });
      return effectivePriority(cfg.priority, ts);
    };
    assert.deepEqual(prio(), { priority: 150, fault: false, failing: [] });
    inst.setDirectorServing(false);
    const e = prio();
    assert.equal(e.fault, want.fault, track);
    if (!want.fault) assert.equal(e.priority, want.priority);
    assert.ok(e.failing.includes('director'));
    inst.setDirectorServing(true);
    assert.deepEqual(prio().failing, []);
  }
});

test('systemd watchdog: WATCHDOG=1 is sent while the daemon progresses and withheld while it is stalled', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { spawn } = await import('node:child_process');
  const { SystemdNotifier } = await import('../../src/systemd/notify');
  const { createLogger } = await import('../../src/log');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xdlive-${process.pid}-`));
  const sock = path.join(dir, 'notify.sock');
  // A unix datagram listener (Python: Node has none), one line per datagram.
  const listener = spawn(
    'python3',
    [
      '-u',
      '-c',
      'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\nwhile True:\n  print(s.recv(65536).decode().replace("\\n"," "),flush=True)',
      sock,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const got: string[] = [];
  let buf = '';
  await new Promise<void>((resolve) =>
    listener.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines)
        if (l === 'bound') resolve();
        else got.push(l);
    }),
  );
  try {
    const sd = new SystemdNotifier(createLogger({ level: 'silent' }), { NOTIFY_SOCKET: sock });
    assert.equal(sd.watchdog(undefined), true);
    assert.equal(sd.watchdog('the health snapshot is 9.0 s old'), false);
    assert.equal(sd.watchdog('the health snapshot is 9.5 s old'), false);
    assert.equal(sd.watchdog(undefined), true);
    for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['WATCHDOG=1', 'WATCHDOG=1']);
  } finally {
    listener.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
