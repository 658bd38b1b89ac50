// `xdirector check`'s verdicts (checkStatus: status in, state, line and exit code out) for the
// conditions a lab cannot cheaply stage: an empty service, raised alerts, a diverged dataplane,
// VRRP FAULT and failing trackers, a BGP session down, a failed reload. The command itself
// against a running daemon (exit codes, socket errors, bad arguments) is in test/api/http.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkStatus } from '../../src/cli/check';
import type { DaemonStatus } from '../../src/daemon/status';
import type { BackendState, BackendStatus } from '../../src/state/types';
import type { VrrpInstanceStatus } from '../../src/vrrp/instance';
import { daemonStatus } from '../lib/status';

const be = (name: string, state: BackendState): BackendStatus => ({
  key: `10.0.0.${name.length}:3306`,
  name,
  address: `10.0.0.${name.length}`,
  port: 3306,
  weight: state === 'active' ? 1 : 0,
  state,
  activeFlows: 0,
  inactiveFlows: 0,
  packets: 0,
  bytes: 0,
  newFlows: 0,
});
const status = (states: BackendState[][], over: Partial<DaemonStatus> = {}): DaemonStatus =>
  daemonStatus(
    {
      kind: 'xdp',
      detail: {
        interface: 'eth0',
        mode: 'native',
        programId: 1,
        pinDir: '/x',
        flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 },
      },
      services: states.map((bs, i) => ({
        name: `s${i}`,
        proto: 'tcp' as const,
        vip: '10.0.0.100',
        port: 3306 + i,
        scheduler: 'maglev' as const,
        newFlows: 0,
        packets: 0,
        bytes: 0,
        noBackend: 0,
        backends: bs.map((s, j) => be(`b${i}${'x'.repeat(j)}`, s)),
      })),
    },
    over,
  );
const T = { warningDown: 1, criticalDown: Infinity };
const vrrp = (state: string, trackers: { name: string; weight: number; ok: boolean }[] = []) =>
  ({ name: 'V', state, trackers }) as unknown as VrrpInstanceStatus;

test('all backends active is OK with the counts and the perfdata', () => {
  assert.deepEqual(checkStatus(status([['active', 'active'], ['active']]), T), {
    state: 'OK',
    code: 0,
    line: 'XDIRECTOR OK - 2/2 services up; 3/3 backends active | services_up=2;;;0;2 backends_up=3;;;0;3 backends_down=0;1;;0;3 alerts=0;;1;0;',
  });
});

test('drained and maintenance backends are reported, not warned about', () => {
  const r = checkStatus(status([['active', 'draining', 'maint']]), T);
  assert.equal(r.code, 0);
  assert.match(r.line, /^XDIRECTOR OK - 1\/1 services up; 1\/3 backends active; 1 draining; 1 in maint \| /);
});

test('a service with no active backend is CRITICAL whatever the thresholds', () => {
  const r = checkStatus(status([['active'], ['maint', 'draining']]), { warningDown: 5, criticalDown: 5 });
  assert.equal(r.code, 2);
  assert.match(r.line, /^XDIRECTOR CRITICAL - service s1 has no active backend; 1\/2 services up; /);
});

test('backends down warn from -w and are critical from --critical', () => {
  const st = status([['active', 'down', 'down']]);
  assert.equal(checkStatus(st, T).code, 1);
  assert.equal(checkStatus(st, { warningDown: 3, criticalDown: Infinity }).code, 0);
  assert.equal(checkStatus(st, { warningDown: 1, criticalDown: 2 }).code, 2);
  assert.match(checkStatus(st, { warningDown: 1, criticalDown: 2 }).line, /backends_down=2;1;2;0;3 /);
});

test('raised alerts, a diverged dataplane, VRRP FAULT and a BGP session down are CRITICAL', () => {
  const ok = [['active']] as BackendState[][];
  assert.match(
    checkStatus(status(ok, { alerts: ['split brain: db1 and db2 are both writable'] }), T).line,
    /^XDIRECTOR CRITICAL - split brain: db1 and db2 are both writable; .* alerts=1;;1;0;$/,
  );
  assert.equal(
    checkStatus(
      status(ok, {
        apply: { diverged: true, since: null, failures: 3, failuresTotal: 3, lastError: 'x', nextRetryAt: null },
      }),
      T,
    ).code,
    2,
  );
  assert.match(
    checkStatus(status(ok, { vrrp: [vrrp('FAULT')] }), T).line,
    /^XDIRECTOR CRITICAL - VRRP V in FAULT; .*VRRP V FAULT \|/,
  );
  const bgp = {
    neighbours: [{ name: 'r1', address: '10.0.0.1', state: 'Active', established: false, exported: 0 }],
  } as unknown as DaemonStatus['bgp'];
  assert.match(checkStatus(status(ok, { bgp }), T).line, /^XDIRECTOR CRITICAL - BGP session r1 Active; /);
});

test('a failing VRRP tracker, a failed apply and a failed reload WARN', () => {
  const ok = [['active']] as BackendState[][];
  assert.match(
    checkStatus(status(ok, { vrrp: [vrrp('BACKUP', [{ name: 'chk', weight: -20, ok: false }])] }), T).line,
    /^XDIRECTOR WARNING - VRRP V tracker chk failing; /,
  );
  assert.equal(checkStatus(status(ok, { lastApplyError: 'EPERM' }), T).code, 1);
  const r = checkStatus(
    status(ok, {
      reloads: {
        total: 2,
        failures: 1,
        lastAt: new Date().toISOString(),
        lastOk: false,
        lastError: 'c.yaml: services[0].port: expected a number\nsecond line',
      },
    }),
    T,
  );
  assert.equal(r.code, 1);
  assert.equal(r.line.split('\n').length, 1, 'a multi-line message stays on the one status line');
});
