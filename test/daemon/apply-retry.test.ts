// A failed apply is retried with capped backoff; while the dataplane differs from
// the desired state an alert is raised and status and metrics say so; the first
// successful apply clears it. Fault injection: the daemon runs with
// XDIRECTOR_TEST_FAULTS=apply, and SIGUSR2 makes its next 3 applies fail.
//
// One xdirector director in the namespace lab of the e2e harness (prefix
// xtar<pid>, no MariaDB: check none), removed in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { E2e, svc } from './harness';
import { ApplyRetry } from '../../src/daemon/apply-retry';

const e = new E2e({ tag: 'ar', directors: 1, mariadb: false });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await e.setup();
  const d = e.directors[0]!;
  e.writeConfig(
    d,
    e.config(d, [
      svc(
        'mysql',
        e.lab.vip,
        e.lab.realServers.map((h) => ({ address: h.ipv4, name: h.name })),
      ),
    ]),
  );
  await e.startDirector(d, { XDIRECTOR_TEST_FAULTS: 'apply' });
  await e.waitResolved(d);
});

after(async () => {
  await e.teardown();
});

test('the retry backoff doubles from 500 ms and is capped at 30 s', () => {
  const r = new ApplyRetry({ log: pino({ level: 'silent' }), retry: () => undefined });
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 40].map((n) => r.delay(n)),
    [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
  );
});

test('failed applies are retried with backoff; meanwhile status, an alert and metrics say the dataplane differs; success clears them', async () => {
  const d = e.directors[0]!;
  assert.equal((await e.status(d)).apply.diverged, false);
  const t0 = Date.now();
  d.child!.kill('SIGUSR2');
  let st: any;
  for (;;) {
    st = await e.status(d);
    if (st.apply.diverged || Date.now() - t0 > 5000) break;
    await sleep(50);
  }
  assert.equal(st.apply.diverged, true, 'status shows the divergence');
  assert.match(st.apply.lastError, /injected fault/);
  assert.ok(
    st.alerts.some((a: string) => /dataplane differs from the desired state/.test(a)),
    JSON.stringify(st.alerts),
  );
  assert.match((await e.cli(d, ['metrics'])).stdout, /^xdirector_dataplane_diverged 1$/m);
  // Three failures (retries after 0.5 s and 1 s and 2 s), the fourth apply succeeds: no other event is needed.
  for (;;) {
    st = await e.status(d);
    if (!st.apply.diverged || Date.now() - t0 > 15000) break;
    await sleep(100);
  }
  const took = Date.now() - t0;
  process.stdout.write(`# diverged for ${took} ms (3 injected failures, backoff 0.5 s, 1 s, 2 s)\n`);
  assert.equal(st.apply.diverged, false, 'cleared after a successful retry');
  assert.equal(st.apply.failuresTotal, 3);
  assert.ok(took >= 3000, `the retries waited their backoff (${took} ms)`);
  assert.ok(!st.alerts.some((a: string) => /dataplane differs/.test(a)));
  const metrics = (await e.cli(d, ['metrics'])).stdout;
  assert.match(metrics, /^xdirector_dataplane_diverged 0$/m);
  assert.match(metrics, /^xdirector_apply_failures_total 3$/m);
  const log = d.log.join('\n');
  assert.match(log, /ALERT the dataplane differs from the desired state.*retrying in 500 ms/);
  assert.match(log, /failed again \(2 in a row\).*next retry in 1000 ms/);
  assert.match(log, /failed again \(3 in a row\).*next retry in 2000 ms/);
  assert.match(log, /alert cleared: the dataplane matches the desired state again after 3 failed apply/);
});
