// A fatal error in the Master director: it resigns VRRP (priority 0), removes the
// VIP, logs why and exits non-zero, so the Backup takes over at once and only one
// director answers for the VIP; restarted, it adopts the pinned program and maps.
//
// Two xdirector directors (VRRP v3, 100 ms adverts) in the namespace lab of the
// e2e harness (prefix xtcr<pid>, removed in after()); the Master runs with
// XDIRECTOR_TEST_FAULTS=throw, so SIGUSR2 throws an exception inside its event loop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { E2e, svc, Director } from './harness';

const e = new E2e({ tag: 'cr', directors: 2, mariadb: false });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function config(d: Director, priority: number) {
  const backends = e.lab.realServers.map((h) => ({ address: h.ipv4, name: h.name }));
  return e.config(d, [svc('mysql', e.lab.vip, backends)], {
    vrrp: [
      {
        name: 'VI_1',
        vrid: 52,
        priority,
        version: 3,
        advert_interval: '100ms',
        vips: [`${e.lab.vip}/32`],
        garp: { repeat: 3, interval: '50ms', refresh: '10s' },
      },
    ],
  });
}

async function holdsVip(d: Director): Promise<boolean> {
  const r = await e.lab.run(d.host, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0']);
  return r.stdout.includes(`${e.lab.vip}/32`);
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number, stepMs = 10): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

async function vrrpState(d: Director): Promise<string> {
  return (await e.status(d)).vrrp[0].state;
}

before(async () => {
  await e.setup();
  const [d1, d2] = e.directors;
  e.writeConfig(d1, config(d1, 150));
  e.writeConfig(d2, config(d2, 100));
  await e.startDirector(d1, { XDIRECTOR_TEST_FAULTS: 'throw' });
  await e.startDirector(d2);
  await waitFor('d1 holds the VIP', () => holdsVip(d1), 10000, 50);
  await waitFor('d2 is Backup', async () => (await vrrpState(d2)) === 'BACKUP', 10000, 50);
});

after(async () => {
  await e.teardown();
});

test('an exception in the Master event loop: it resigns, removes the VIP, says why and exits non-zero; the Backup takes over at once', async () => {
  const [d1, d2] = e.directors;
  const child = d1.child!;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const t0 = Date.now();
  child.kill('SIGUSR2');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    exited,
    new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), 10000);
    }),
  ]);
  clearTimeout(timer);
  const exitMs = Date.now() - t0;
  d1.child = null;
  assert.equal(code, 70, `exit code (log:\n${d1.log.slice(-15).join('\n')})`);
  assert.equal(await holdsVip(d1), false, 'the crashed director holds no VIP');
  const takeover = await waitFor('d2 holds the VIP', () => holdsVip(d2), 3000);
  const total = Date.now() - t0;
  process.stdout.write(
    `# crash: d1 exited after ${exitMs} ms; d2 held the VIP ${total} ms after the fault (${takeover} ms after d1 exited)\n`,
  );
  // Priority 0 makes the Backup take over after its skew time (~0.06 s here) instead of
  // Master_Down_Interval (3 x 100 ms + skew); the assertion leaves room for a loaded machine.
  assert.ok(total < 1500, `d2 took over ${total} ms after the fault`);
  assert.equal(await vrrpState(d2), 'MASTER');
  const fatal = d1.log.find((l) => l.includes('fatal uncaught exception'));
  assert.ok(fatal, `a fatal line says why:\n${d1.log.slice(-15).join('\n')}`);
  assert.match(fatal!, /injected fault: exception in the event loop/);
});

test('restarted, the crashed director adopts the pinned program and maps and takes the VIP back', async () => {
  const [d1] = e.directors;
  d1.log.length = 0;
  await e.startDirector(d1);
  assert.ok(
    d1.log.some((l) => l.includes('XDP program reloaded over the pinned maps')),
    `adopted:\n${d1.log.slice(-20).join('\n')}`,
  );
  await waitFor('d1 holds the VIP again (preempt)', () => holdsVip(d1), 10000, 50);
  assert.equal(await vrrpState(d1), 'MASTER');
});
