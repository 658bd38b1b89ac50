// IPVS for real: boots Debian's kernel under qemu (scripts/vm/run.sh; the host kernel has no
// IPVS), builds a namespace DR lab in the guest and runs test/vm/guest/ipvs-scenario.ts there,
// which drives IpvsDataplane through phases and records ipvsadm's view, real TCP connections
// through the VIP and the TS model of the kernel's mh table. One boot; the tests below assert
// on what it recorded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { skip, bootGuest } from './harness';

let out = '';
let rc = -1;
let wallMs = 0;
let console_ = '';
let r: any = {};

before(
  async () => {
    if (skip) return;
    ({ rc, wallMs, out } = await bootGuest('test/vm/guest/ipvs-dr.sh', 600, 'vmt'));
    console_ = existsSync(join(out, 'console.log')) ? readFileSync(join(out, 'console.log'), 'utf8') : '';
    if (existsSync(join(out, 'result.json'))) r = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  },
  { timeout: 660_000 },
);

after(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

interface Svc {
  line: string;
  dests: Array<{ addr: string; fwd: string; weight: number }>;
}
/** `ipvsadm -Ln` -> services with their destinations (in the kernel's list order). */
function parseIpvsadm(text: string): Svc[] {
  const out: Svc[] = [];
  for (const l of text.split('\n')) {
    const s = /^(TCP|UDP|SCTP|FWM)\s+(.*?)\s*$/.exec(l);
    if (s) {
      out.push({ line: `${s[1]} ${s[2]}`, dests: [] });
      continue;
    }
    const d = /^\s+->\s+(\S+)\s+(\S+)\s+(\d+)/.exec(l);
    if (d && out.length && d[1] !== 'RemoteAddress:Port')
      out[out.length - 1]!.dests.push({ addr: d[1]!, fwd: d[2]!, weight: Number(d[3]) });
  }
  return out.sort((a, b) => a.line.localeCompare(b.line));
}

test("the guest boots Debian's kernel, runs the IPVS scenario and reports exit status 0", { skip }, (t) => {
  const boot = /XD-VM-UPTIME ([\d.]+)/.exec(console_)?.[1];
  t.diagnostic(
    `VM wall ${(wallMs / 1000).toFixed(1)} s, guest userspace at ${boot} s uptime, scenario steps (ms): ${JSON.stringify(r.timings)}`,
  );
  assert.equal(r.fatal, undefined, r.fatal);
  assert.equal(rc, 0, `run.sh exit ${rc}; console tail:\n${console_.slice(-3000)}`);
});

test(
  'IpvsDataplane programs the desired state and ipvsadm -Ln agrees, weights, mh-port and the IPv6 and UDP services included',
  { skip },
  () => {
    assert.deepEqual(
      parseIpvsadm(r.ipvsadmP1),
      [
        {
          line: 'TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)',
          dests: [
            { addr: '10.77.0.11:3306', fwd: 'Route', weight: 1 },
            { addr: '10.77.0.12:3306', fwd: 'Route', weight: 1 },
            { addr: '10.77.0.13:3306', fwd: 'Route', weight: 2 },
          ],
        },
        {
          line: 'TCP [fd00:77::100]:3306 wrr',
          dests: [
            { addr: '[fd00:77::11]:3306', fwd: 'Route', weight: 3 },
            { addr: '[fd00:77::12]:3306', fwd: 'Route', weight: 1 },
          ],
        },
        { line: 'UDP 10.77.0.100:53 sh (sh-fallback)', dests: [{ addr: '10.77.0.11:53', fwd: 'Route', weight: 1 }] },
      ].sort((a, b) => a.line.localeCompare(b.line)),
    );
  },
);

test('applying the same desired state again changes nothing in the kernel', { skip }, () => {
  assert.equal(r.changesP1, 9, '3 services + 6 dests on the first apply');
  assert.equal(r.changesRepeat, 0);
});

test(
  'the IPVS sysctls for switching (sloppy_tcp) and down backends (expire_nodest_conn) are set in the namespace',
  { skip },
  () => {
    assert.deepEqual(r.sysctls, { sloppy_tcp: '1', expire_nodest_conn: '1' });
  },
);

test('TCP connections through the VIP spread over all three backends', { skip }, () => {
  assert.deepEqual(r.p1.errors, [], 'every connection got an answer');
  assert.equal(r.p1.total, 90);
  for (const b of ['rs1', 'rs2', 'rs3'])
    assert.ok((r.p1.counts[b] ?? 0) >= 9, `${b} got ${r.p1.counts[b] ?? 0} of 90: ${JSON.stringify(r.p1.counts)}`);
});

test(
  "for every client source port IPVS mh picks the backend that buildIpvsMh + ipvsMhLookup predict from the kernel's dest order",
  { skip },
  () => {
    for (const p of ['p1', 'p2', 'p3', 'p4']) {
      assert.deepEqual(r[p].mismatches, [], `${p}: IPVS and the TS model disagree`);
      assert.deepEqual(r[p].errors, [], `${p}: failed connections`);
    }
    assert.deepEqual(
      r.p1.destOrder,
      ['10.77.0.13:3306', '10.77.0.12:3306', '10.77.0.11:3306'],
      'the kernel lists dests newest first',
    );
  },
);

test('a drained backend has weight 0 in ipvsadm and gets no new connections, and nothing is refused', { skip }, () => {
  const mysql = parseIpvsadm(r.p2.ipvsadm).find((s) => s.line.startsWith('TCP 10.77.0.100:3306'))!;
  assert.deepEqual(mysql.dests.find((d) => d.addr === '10.77.0.12:3306')?.weight, 0);
  assert.equal(r.p2.counts.rs2, undefined, `rs2 got ${r.p2.counts.rs2}`);
  assert.deepEqual(r.p2.errors, []);
  assert.equal((r.p2.counts.rs1 ?? 0) + (r.p2.counts.rs3 ?? 0), 45);
});

test('a down backend is removed from IPVS and gets no new connections', { skip }, () => {
  const mysql = parseIpvsadm(r.p3.ipvsadm).find((s) => s.line.startsWith('TCP 10.77.0.100:3306'))!;
  assert.deepEqual(mysql.dests.map((d) => d.addr).sort(), ['10.77.0.11:3306', '10.77.0.12:3306']);
  assert.equal(r.p3.counts.rs3, undefined);
  assert.equal((r.p3.counts.rs1 ?? 0) + (r.p3.counts.rs2 ?? 0), 45);
});

test("changes made with ipvsadm behind xdirector's back are logged and reconciled on the next apply", { skip }, () => {
  assert.deepEqual(r.driftLogs.filter((m: string) => m.includes('outside xdirector')).sort(), [
    'IPVS dest was added outside xdirector; removing',
    'IPVS dest was removed outside xdirector; re-adding',
    'IPVS dest weight was changed outside xdirector; restoring',
    'IPVS scheduler was changed outside xdirector; restoring',
  ]);
  assert.ok(
    r.driftChanges.includes(
      'update TCP 10.77.0.100:3306: scheduler rr -> mh, flags rr -> mh (mh-fallback,mh-port) (0x0 -> 0x18)',
    ),
    r.driftChanges.join('\n'),
  );
  const mysql = parseIpvsadm(r.p4.ipvsadm).find((s) => s.line.startsWith('TCP 10.77.0.100:3306'))!;
  assert.equal(mysql.line, 'TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)');
  assert.deepEqual(
    mysql.dests.map((d) => [d.addr, d.weight]),
    [
      ['10.77.0.11:3306', 1],
      ['10.77.0.12:3306', 1],
    ],
    're-added rs1 is at the head of the list',
  );
});

test('kernel errors name the errno and what was being done', { skip }, () => {
  assert.deepEqual(r.errExists, {
    code: 'XD_ERR_IPVS',
    message: 'add dest 10.77.0.11:3306 to TCP 10.77.0.100:3306: File exists',
    errno: 17,
    errnoCode: 'EEXIST',
  });
  assert.deepEqual(r.errRange, {
    code: 'XD_ERR_IPVS',
    message: 'update dest 10.77.0.11:3306 of TCP 10.77.0.100:3306 (weight -1): Numerical result out of range',
    errno: 34,
    errnoCode: 'ERANGE',
  });
  assert.equal(r.errThresh.errno, 34, 'lower threshold above upper is refused');
  assert.deepEqual(r.errNoSched, {
    code: 'XD_ERR_IPVS',
    message: 'add TCP 10.77.0.100:3307 (scheduler nosuch): No such file or directory',
    errno: 2,
    errnoCode: 'ENOENT',
  });
  assert.deepEqual(r.errNoService, {
    code: 'XD_ERR_IPVS',
    message: 'delete TCP 10.77.0.100:3399: No such process',
    errno: 3,
    errnoCode: 'ESRCH',
  });
});

test('an unknown scheduler is refused before IPVS is touched', { skip }, () => {
  assert.equal(
    r.errUnknownScheduler.message,
    'IPVS: service mysql: unknown scheduler "wlc" — use one of maglev, sh, wrr, rr, lc',
  );
  assert.equal(r.unchangedAfterBadInput, true);
});

test('a kernel failure part-way through an apply is rolled back and logged with what was done', { skip }, () => {
  assert.equal(r.errMidApply.message, 'add TCP 10.77.0.100:3310 (scheduler lc): No such file or directory');
  assert.equal(r.rolledBack, true, r.ipvsadmAfterRollback);
  assert.deepEqual(r.rollbackLogs, [
    {
      msg: 'IPVS apply failed after 1 of 3 changes; rolling back',
      failed: 'add TCP 10.77.0.100:3310 scheduler lc',
      done: ['add dest 10.77.0.13:3306 weight 2 to TCP 10.77.0.100:3306'],
    },
  ]);
});

test('status reports each service and backend with IPVS counters, down backends included', { skip }, () => {
  const s = r.status.services.find((x: any) => x.name === 'mysql');
  assert.equal(r.status.kind, 'ipvs');
  assert.equal(s.scheduler, 'maglev');
  assert.ok(s.newFlows >= 90 + 45 * 3, `newFlows ${s.newFlows}`);
  assert.ok(s.packets > 0);
  assert.deepEqual(
    s.backends.map((b: any) => [b.name, b.state, b.weight]),
    [
      ['rs1', 'active', 1],
      ['rs2', 'active', 1],
      ['rs3', 'down', 0],
    ],
  );
  assert.ok(s.backends[0].newFlows > 0);
});

test(
  'close leaves the services in the kernel, a new instance adopts them unchanged, close with keepState false removes them',
  { skip },
  () => {
    assert.equal(parseIpvsadm(r.ipvsadmAfterClose).length, 3);
    assert.equal(r.changesAfterAdopt, 0);
    assert.deepEqual(parseIpvsadm(r.ipvsadmAfterCleanup), []);
  },
);
