// The VRRP state machine under a fake clock: every RFC 3768 / RFC 5798 timer
// and election rule, deterministically.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VrrpMachine, type MachineConfig, type TransitionInfo } from '../../src/vrrp/machine';
import { Tracker, effectivePriority } from '../../src/vrrp/track';
import { FakeClock, ME, advertFrom, machineConfig } from './fake-clock';

function setup(over: Partial<MachineConfig> = {}) {
  const clock = new FakeClock();
  const sent: { at: number; priority: number }[] = [];
  const transitions: TransitionInfo[] = [];
  const m = new VrrpMachine(
    machineConfig(over),
    { send: (priority) => sent.push({ at: clock.now(), priority }), transition: (t) => transitions.push(t) },
    clock,
  );
  const rx = (src: string, priority: number, extra: { intervalMs?: number } = {}) =>
    m.handlePacket(
      ...advertFrom(src, { priority, intervalMs: extra.intervalMs ?? over.intervalMs ?? 1000 }, over.version ?? 3),
    );
  return { clock, m, sent, transitions, rx };
}

describe('VRRP state machine: timers', () => {
  it('starts as Backup and becomes Master when Master_Down_Interval (3 × interval + skew) passes in silence (v2)', () => {
    const { clock, m, sent } = setup({ version: 2, priority: 100 });
    m.start();
    assert.equal(m.state, 'BACKUP');
    const down = 3 * 1000 + ((256 - 100) * 1000) / 256; // 3609.375 ms
    assert.equal(m.masterDownMs(), down);
    clock.advance(3609);
    assert.equal(m.state, 'BACKUP');
    clock.advance(1);
    assert.equal(m.state, 'MASTER');
    assert.deepEqual(sent, [{ at: down, priority: 100 }]);
  });

  it('computes the v3 skew from the master advert interval it learned, not its own', () => {
    const { m, rx } = setup({ version: 3, priority: 100, intervalMs: 1000 });
    m.start();
    rx('10.0.0.9', 200, { intervalMs: 100 });
    assert.equal(m.masterDownMs(), 3 * 100 + ((256 - 100) * 100) / 256);
    assert.equal(m.counters.intervalMismatch, 1);
  });

  it('sends an advert every advertisement interval while Master', () => {
    const { clock, m, sent } = setup({ priority: 255, intervalMs: 100 });
    m.start();
    clock.advance(1000);
    assert.equal(m.state, 'MASTER');
    assert.deepEqual(
      sent.map((s) => s.at),
      [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
    );
  });

  it('starts the address owner (priority 255) as Master at once', () => {
    const { m, sent, transitions } = setup({ priority: 255 });
    m.start();
    assert.equal(m.state, 'MASTER');
    assert.deepEqual(sent, [{ at: 0, priority: 255 }]);
    assert.equal(transitions[0]?.to, 'MASTER');
  });

  it('keeps a Backup in Backup while a higher-priority master keeps advertising', () => {
    const { clock, m, rx } = setup();
    m.start();
    for (let i = 0; i < 10; i++) {
      rx('10.0.0.9', 150);
      clock.advance(1000);
    }
    assert.equal(m.state, 'BACKUP');
  });
});

describe('VRRP state machine: election', () => {
  it('preempts a lower-priority master after Master_Down_Interval by ignoring its adverts', () => {
    const { clock, m, rx } = setup({ priority: 150 });
    m.start();
    for (let i = 0; i < 3; i++) {
      rx('10.0.0.9', 100);
      clock.advance(1000);
    }
    rx('10.0.0.9', 100);
    // The lower-priority adverts did not reset the timer armed at start.
    clock.advance(m.masterDownMs() - 3000 - 1);
    assert.equal(m.state, 'BACKUP');
    clock.advance(1);
    assert.equal(m.state, 'MASTER');
  });

  it('does not preempt a lower-priority master with preempt off (nopreempt)', () => {
    const { clock, m, rx } = setup({ priority: 150, preempt: false });
    m.start();
    for (let i = 0; i < 20; i++) {
      rx('10.0.0.9', 100);
      clock.advance(1000);
    }
    assert.equal(m.state, 'BACKUP');
  });

  it('delays preemption of a lower-priority master by preempt_delay, then preempts', () => {
    const { clock, m, rx } = setup({ priority: 150, preemptDelayMs: 5000 });
    m.start();
    for (let i = 0; i < 5; i++) {
      rx('10.0.0.9', 100);
      clock.advance(1000);
    }
    assert.equal(m.state, 'BACKUP'); // 5 s of lower-priority adverts accepted
    const t0 = clock.now();
    for (let i = 0; i < 10 && m.state === 'BACKUP'; i++) {
      rx('10.0.0.9', 100);
      clock.advance(1000);
    }
    assert.equal(m.state, 'MASTER');
    assert.ok(
      clock.now() - t0 <= Math.ceil(m.masterDownMs()) + 1000,
      `preempted ${clock.now() - t0} ms after the delay`,
    );
  });

  it('steps down from Master on a higher-priority advert', () => {
    const { clock, m, rx, transitions } = setup({ priority: 100 });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    assert.equal(m.state, 'MASTER');
    rx('10.0.0.9', 200);
    assert.equal(m.state, 'BACKUP');
    assert.match(transitions.at(-1)!.reason, /higher priority 200/);
    assert.equal(m.status().masterAddress, '10.0.0.9');
  });

  it('breaks an equal-priority tie by primary address: the higher address wins', () => {
    const a = setup({ priority: 100, primaryAddress: '10.0.0.2' });
    a.m.start();
    a.clock.advance(a.m.masterDownMs() + 1);
    a.rx('10.0.0.3', 100);
    assert.equal(a.m.state, 'BACKUP');

    const b = setup({ priority: 100, primaryAddress: '10.0.0.3' });
    b.m.start();
    b.clock.advance(b.m.masterDownMs() + 1);
    const before = b.sent.length;
    b.rx('10.0.0.2', 100);
    assert.equal(b.m.state, 'MASTER');
    assert.equal(b.sent.length, before + 1, 'answers the lower router at once');
  });

  it('takes over after the skew time only when the master sends priority 0', () => {
    const { clock, m, rx } = setup({ priority: 100, intervalMs: 100 });
    m.start();
    rx('10.0.0.9', 200);
    clock.advance(50);
    rx('10.0.0.9', 0);
    const skew = ((256 - 100) * 100) / 256; // 60.9375 ms
    clock.advance(skew - 1);
    assert.equal(m.state, 'BACKUP');
    clock.advance(1);
    assert.equal(m.state, 'MASTER');
    assert.equal(m.counters.priorityZeroReceived, 1);
  });

  it('answers a priority-0 advert at once while Master', () => {
    const { clock, m, rx, sent } = setup({ priority: 255, intervalMs: 1000 });
    m.start();
    clock.advance(300);
    rx('10.0.0.9', 0);
    assert.deepEqual(sent.at(-1), { at: 300, priority: 255 });
    assert.equal(m.state, 'MASTER');
  });
});

describe('VRRP state machine: stop, tracking and fault', () => {
  it('sends priority 0 and goes to STOP on a graceful stop from Master', () => {
    const { m, sent, transitions } = setup({ priority: 255 });
    m.start();
    m.stop();
    assert.deepEqual(sent.at(-1), { at: 0, priority: 0 });
    assert.equal(m.state, 'STOP');
    assert.deepEqual(
      transitions.map((t) => t.to),
      ['MASTER', 'STOP'],
    );
  });

  it('does not send priority 0 when a Backup stops', () => {
    const { m, sent } = setup();
    m.start();
    m.stop();
    assert.equal(sent.length, 0);
  });

  it('announces a lowered priority at once while Master so a better Backup can preempt', () => {
    const { clock, m, sent } = setup({ priority: 200 });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    m.setPriority(150, false);
    assert.equal(sent.at(-1)!.priority, 150);
    assert.equal(m.effectivePriority, 150);
  });

  it('never adjusts the owner priority', () => {
    const { m } = setup({ priority: 255 });
    m.start();
    m.setPriority(100, false);
    assert.equal(m.effectivePriority, 255);
  });

  it('goes to FAULT (sending priority 0) when a weight-0 tracker fails, and back to Backup when it recovers', () => {
    const { clock, m, sent, transitions } = setup({ priority: 100 });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    m.setPriority(100, true);
    assert.equal(m.state, 'FAULT');
    assert.equal(sent.at(-1)!.priority, 0);
    clock.advance(100_000);
    assert.equal(m.state, 'FAULT', 'no timer runs in FAULT');
    m.setPriority(100, false);
    assert.equal(m.state, 'BACKUP');
    assert.deepEqual(
      transitions.map((t) => t.to),
      ['BACKUP', 'MASTER', 'FAULT', 'BACKUP'],
    );
  });

  it('reports every transition in order with the priority at that moment', () => {
    const { clock, m, rx, transitions } = setup({ priority: 120 });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    rx('10.0.0.9', 200);
    assert.deepEqual(
      transitions.map((t) => [t.from, t.to, t.priority]),
      [
        ['INIT', 'BACKUP', 120],
        ['BACKUP', 'MASTER', 120],
        ['MASTER', 'BACKUP', 120],
      ],
    );
  });
});

describe('VRRP tracking (keepalived weight semantics)', () => {
  it('adds a positive weight while the tracker is OK', () => {
    const t = new Tracker({ name: 's', weight: 20 });
    assert.equal(effectivePriority(100, [t]).priority, 120);
    t.set(false);
    assert.equal(effectivePriority(100, [t]).priority, 100);
  });

  it('subtracts a negative weight while the tracker is failing', () => {
    const t = new Tracker({ name: 's', weight: -30 });
    assert.equal(effectivePriority(100, [t]).priority, 100);
    t.set(false);
    assert.deepEqual(effectivePriority(100, [t]), { priority: 70, fault: false, failing: ['s'] });
  });

  it('clamps the effective priority to 1–254', () => {
    const up = new Tracker({ name: 'u', weight: 200 });
    const down = new Tracker({ name: 'd', weight: -200 });
    down.set(false);
    assert.equal(effectivePriority(200, [up]).priority, 254);
    assert.equal(effectivePriority(50, [down]).priority, 1);
  });

  it('never adjusts the owner (255)', () => {
    const down = new Tracker({ name: 'd', weight: -50 });
    down.set(false);
    assert.equal(effectivePriority(255, [down]).priority, 255);
  });

  it('reports fault while a weight-0 tracker fails', () => {
    const t = new Tracker({ name: 'z', weight: 0 });
    t.set(false);
    assert.equal(effectivePriority(100, [t]).fault, true);
  });

  it('turns failing after `fall` consecutive failures and OK after `rise` consecutive successes', () => {
    const t = new Tracker({ name: 's', weight: -10, rise: 2, fall: 3 });
    assert.equal(t.report(false), false);
    assert.equal(t.report(true), false); // streak broken
    t.report(false);
    t.report(false);
    assert.equal(t.isOk, true);
    assert.equal(t.report(false), true);
    assert.equal(t.isOk, false);
    assert.equal(t.report(true), false);
    assert.equal(t.report(true), true);
    assert.equal(t.isOk, true);
  });
});

describe('VRRP state machine: bad packets', () => {
  it('counts a dropped packet by reason and does not change state', () => {
    const { clock, m } = setup({ priority: 100 });
    m.start();
    const [msg, meta] = advertFrom('10.0.0.9', { priority: 200 });
    assert.equal(m.handlePacket(msg, { ...meta, ttl: 64 }), 'ttl');
    assert.equal(m.handlePacket(advertFrom('10.0.0.9', { priority: 200, vrid: 9 })[0], meta), 'vrid');
    msg[7] ^= 0xff;
    assert.equal(m.handlePacket(msg, meta), 'checksum');
    clock.advance(m.masterDownMs() + 1);
    assert.equal(m.state, 'MASTER', 'bad packets did not reset the master down timer');
    assert.equal(m.counters.dropped.ttl, 1);
    assert.equal(m.counters.dropped.vrid, 1);
    assert.equal(m.counters.dropped.checksum, 1);
    assert.equal(m.counters.accepted, 0);
  });

  it('drops its own adverts looped back', () => {
    const { m } = setup({ priority: 100 });
    m.start();
    assert.equal(m.handlePacket(...advertFrom('10.0.0.2', { priority: 100 })), 'own');
  });
});

describe('VRRP state machine: unicast peers', () => {
  const PEER = '10.0.0.3';
  const STRANGER = '192.0.2.66'; // off-link: its advert arrives routed (TTL < 255), which unicast mode does not check

  it('ignores a priority-255 advert from a sender that is not a configured unicast peer while Master', () => {
    const { clock, m, transitions } = setup({ priority: 200, unicastPeers: [PEER] });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    assert.equal(m.state, 'MASTER');
    const [msg, meta] = advertFrom(STRANGER, { priority: 255 });
    assert.equal(m.handlePacket(msg, { ...meta, dst: ME, ttl: 61 }), 'peer');
    assert.equal(m.state, 'MASTER', 'an unlisted sender must not demote the Master');
    assert.equal(m.counters.dropped.peer, 1);
    assert.equal(m.counters.accepted, 0);
    assert.equal(transitions.filter((t) => t.to === 'BACKUP').length, 1, 'only the startup transition to Backup');
  });

  it('still steps down on a higher-priority advert from a configured unicast peer, whatever its TTL', () => {
    const { clock, m } = setup({ priority: 200, unicastPeers: [PEER] });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    const [msg, meta] = advertFrom(PEER, { priority: 255 });
    assert.equal(m.handlePacket(msg, { ...meta, dst: ME, ttl: 61 }), 'accepted');
    assert.equal(m.state, 'BACKUP');
  });

  it('keeps requiring TTL 255 in multicast mode', () => {
    const { clock, m } = setup({ priority: 200 });
    m.start();
    clock.advance(m.masterDownMs() + 1);
    const [msg, meta] = advertFrom(STRANGER, { priority: 255 });
    assert.equal(m.handlePacket(msg, { ...meta, ttl: 61 }), 'ttl');
    assert.equal(m.state, 'MASTER');
  });
});

describe('VRRP state machine: sync group hooks (src/vrrp/sync.ts)', () => {
  /** Two machines on one fake clock, wired through a SyncGroup the way VrrpInstance wires them. */
  async function pair() {
    const { SyncGroup } = await import('../../src/vrrp/sync');
    const clock = new FakeClock();
    const g = new SyncGroup('VG1');
    const ms: VrrpMachine[] = [];
    const sent: Array<{ m: number; priority: number }> = [];
    const members = [0, 1].map((k) => {
      const member = {
        cfg: { name: `vi${k}`, sync_group: 'VG1' },
        get wantsMaster() {
          return ms[k]!.wantsMaster;
        },
        get ownFault() {
          return ms[k]!.ownFault;
        },
        syncMaster: (r: string) => ms[k]!.syncMaster(r),
        syncBackup: (r: string) => ms[k]!.syncBackup(r),
        syncFault: (r: string) => ms[k]!.syncFault(r),
        syncFaultCleared: (r: string) => ms[k]!.syncFaultCleared(r),
        joinSyncGroup: () => undefined,
      };
      g.add(member);
      return member;
    });
    for (const k of [0, 1]) {
      ms.push(
        new VrrpMachine(
          machineConfig({ name: `vi${k}`, vrid: 51 + k, intervalMs: 100 * (k + 1) }),
          {
            send: (priority) => sent.push({ m: k, priority }),
            transition: (t) => g.transition(members[k]!, t),
            mayBecomeMaster: () => g.mayBecomeMaster(members[k]!),
            mayLeaveFault: () => g.mayLeaveFault(members[k]!),
          },
          clock,
        ),
      );
    }
    return { clock, ms, sent };
  }

  it('a member whose Master_Down timer runs out first waits for the other; then both become Master together', async () => {
    const { clock, ms } = await pair();
    for (const m of ms) m.start();
    // vi0 (100 ms adverts) times out after ~361 ms, vi1 (200 ms) after ~722 ms.
    clock.advance(500);
    assert.deepEqual(
      ms.map((m) => m.state),
      ['BACKUP', 'BACKUP'],
    );
    assert.equal(ms[0]!.wantsMaster, true);
    clock.advance(300);
    assert.deepEqual(
      ms.map((m) => m.state),
      ['MASTER', 'MASTER'],
    );
  });

  it('a member leaving Master for Backup takes the other with it, which says so with priority 0', async () => {
    const { clock, ms, sent } = await pair();
    for (const m of ms) m.start();
    clock.advance(800);
    assert.deepEqual(
      ms.map((m) => m.state),
      ['MASTER', 'MASTER'],
    );
    sent.length = 0;
    ms[0]!.handlePacket(...advertFrom('10.0.0.9', { priority: 200, intervalMs: 100 }, 3));
    assert.deepEqual(
      ms.map((m) => m.state),
      ['BACKUP', 'BACKUP'],
    );
    assert.deepEqual(sent, [{ m: 1, priority: 0 }]);
  });

  it('a member in Fault faults the other, and both leave Fault only when no member is faulted', async () => {
    const { clock, ms } = await pair();
    for (const m of ms) m.start();
    clock.advance(800);
    ms[1]!.setPriority(100, true);
    assert.deepEqual(
      ms.map((m) => m.state),
      ['FAULT', 'FAULT'],
    );
    assert.deepEqual(
      ms.map((m) => m.ownFault),
      [false, true],
    );
    ms[1]!.setPriority(100, false);
    assert.deepEqual(
      ms.map((m) => m.state),
      ['BACKUP', 'BACKUP'],
    );
    clock.advance(800);
    assert.deepEqual(
      ms.map((m) => m.state),
      ['MASTER', 'MASTER'],
    );
  });
});
