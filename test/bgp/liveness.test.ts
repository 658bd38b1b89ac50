// A BGP director's liveness, end to end in the fabric (fabric.ts) with one director:
// - packets XDP passes to the kernel for an announced VIP are the director's own (a local route
//   on lo), not routed back to the router until their TTL runs out;
// - a BIRD that stops answering its control socket (SIGSTOP) is killed and restarted, and its
//   session comes back;
// - a health round that never completes (injected: XDIRECTOR_TEST_FAULTS=stall-health, SIGUSR2)
//   makes the snapshot stale: the VIPs are withdrawn and an alert raised, and a NAT gateway held
//   by VRRP beside them is given up (the same rule), until rounds resume;
// - driver XDP TX errors that keep rising withdraw the VIPs, and they come back when they stop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fabric, Director, VIP } from './fabric';
import { run, runIn, sleep } from '../../scripts/lab/exec';
import { defaultXdpPassObject } from '../../scripts/lab/topology';

/** A second VIP outside every connected subnet: a packet the kernel does not take is routed by the default route, back to the router. */
const FAR_VIP = '10.79.0.100';

/** A NAT gateway this BGP director holds by VRRP while it can serve. */
const GW = '10.77.9.1';

const f = new Fabric('lv');
let d1: Director;
const measured: Record<string, unknown> = {};

before(async () => {
  await f.setup();
  d1 = await f.addDirector(1, true);
  await f.startRouter([{ n: 1, bfd: true }]);
  // A director as it usually is: a default route through the router, forwarding on.
  await run('ip', ['-n', d1.ns, 'route', 'add', 'default', 'via', '10.77.0.1']);
  await runIn(d1.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const cfg = f.config(d1);
  const svc = (cfg.services as Record<string, unknown>[])[0]!;
  cfg.services = [svc, { ...svc, name: 'far', vip: FAR_VIP }];
  // A NAT gateway held by VRRP beside the BGP announcements (README: NAT mode; a NAT VIP is never
  // announced): its instance's built-in director tracker follows the rule that withdraws the VIPs.
  cfg.vrrp = [
    { name: 'GW', vrid: 61, priority: 150, version: 3, advert_interval: '100ms', vips: [`${GW}/24 dev eth0`] },
  ];
  // The director inherits it: SIGUSR2 stalls its health rounds (src/health/monitor.ts).
  process.env.XDIRECTOR_TEST_FAULTS = 'stall-health';
  await f.startDirector(d1, cfg);
  delete process.env.XDIRECTOR_TEST_FAULTS;
  await f.waitNexthops((h) => h.includes(d1.ip), 20_000, 'd1 announcing');
  await waitGateway(true, 10_000);
});

async function holdsGateway(): Promise<boolean> {
  return (await runIn(d1.ns, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`${GW}/24`);
}

async function waitGateway(held: boolean, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while ((await holdsGateway()) !== held) {
    if (performance.now() - t0 > timeoutMs)
      assert.fail(`d1 ${held ? 'does not hold' : 'still holds'} the gateway ${GW} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

after(async () => {
  if (Object.keys(measured).length) process.stdout.write(`# measured ${JSON.stringify(measured)}\n`);
  await f.teardown();
});

/** /proc/net/snmp counters of a namespace: "Ip.ForwDatagrams", "Icmp.OutTimeExcds", … */
async function snmp(ns: string): Promise<Map<string, number>> {
  const lines = (await runIn(ns, 'cat', ['/proc/net/snmp'])).stdout.trim().split('\n');
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    names.slice(1).forEach((n, k) => out.set(`${names[0]!.replace(':', '')}.${n}`, Number(values[k + 1])));
  }
  return out;
}

/** One TCP connect from the client: "ECONNREFUSED", "connected", "timeout" or the error code, and how long it took. */
async function connectFromClient(
  host: string,
  port: number,
  timeoutMs = 3000,
): Promise<{ result: string; ms: number }> {
  const script = `const net=require('net');const t0=performance.now();const s=net.connect({host:${JSON.stringify(host)},port:${port}});
const done=(r)=>{process.stdout.write(JSON.stringify({result:r,ms:Math.round(performance.now()-t0)}));s.destroy();process.exit(0)};
s.on('connect',()=>done('connected'));s.on('error',(e)=>done(e.code||e.message));setTimeout(()=>done('timeout'),${timeoutMs});`;
  const r = await runIn(f.cl.ns, process.execPath, ['-e', script], { timeoutMs: timeoutMs + 5000 });
  return JSON.parse(r.stdout) as { result: string; ms: number };
}

test("each announced VIP has a local route on lo in the director's local table (and is still no address)", async () => {
  const r = await runIn(d1.ns, 'ip', ['-j', 'route', 'show', 'table', 'local', 'dev', 'lo']);
  const routes = JSON.parse(r.stdout) as { type?: string; dst: string; protocol?: string }[];
  for (const vip of [VIP, FAR_VIP]) {
    assert.ok(
      routes.some((x) => x.type === 'local' && x.dst === vip),
      `local ${vip} dev lo in ${r.stdout}`,
    );
  }
  assert.doesNotMatch((await runIn(d1.ns, 'ip', ['-o', 'addr', 'show'])).stdout, /10\.7[79]\.0\.100/);
});

test('a connection to a port no service uses on an announced VIP is refused by the director at once, not looped between director and router', async () => {
  await f.waitNexthops((h) => h.includes(d1.ip), 20_000, 'd1 announcing');
  const rt0 = await snmp(f.rt.ns);
  const d0 = await snmp(d1.ns);
  const out = await connectFromClient(FAR_VIP, 3399);
  const rt1 = await snmp(f.rt.ns);
  const d1c = await snmp(d1.ns);
  const forwarded = rt1.get('Ip.ForwDatagrams')! - rt0.get('Ip.ForwDatagrams')!;
  const ttlExceeded =
    rt1.get('Icmp.OutTimeExcds')! -
    rt0.get('Icmp.OutTimeExcds')! +
    (d1c.get('Icmp.OutTimeExcds')! - d0.get('Icmp.OutTimeExcds')!);
  const directorForwarded = d1c.get('Ip.ForwDatagrams')! - d0.get('Ip.ForwDatagrams')!;
  measured.unusedPort = { ...out, routerForwarded: forwarded, directorForwarded, ttlExceeded };
  assert.equal(out.result, 'ECONNREFUSED', JSON.stringify(measured.unusedPort));
  assert.ok(out.ms < 1000, `refused in ${out.ms} ms`);
  // The SYN in and the RST out; a loop forwards the SYN ~32 times each way until its TTL ends.
  assert.ok(forwarded <= 4, `router forwarded ${forwarded} datagrams for one SYN`);
  assert.equal(directorForwarded, 0, 'the director forwarded a passed packet');
  assert.equal(ttlExceeded, 0, 'TTL exceeded');
});

test('a BIRD that stops answering (SIGSTOP) is killed and restarted, its session comes back and the VIP is announced again', async () => {
  let st = await f.status(d1);
  const pid = st.bgp.daemon.pid as number;
  const restarts = st.bgp.daemon.restarts as number;
  assert.ok(pid > 0 && st.bgp.daemon.running, JSON.stringify(st.bgp.daemon));
  const t0 = performance.now();
  process.kill(pid, 'SIGSTOP');
  let sawHung = false;
  try {
    for (;;) {
      st = await f.status(d1);
      if (st.bgp.daemon.hung) sawHung = true;
      if (st.bgp.daemon.restarts > restarts && st.bgp.daemon.running && st.bgp.daemon.pid !== pid) break;
      if (performance.now() - t0 > 20_000)
        assert.fail(`BIRD not restarted 20 s after SIGSTOP: ${JSON.stringify(st.bgp.daemon)}`);
      await sleep(200);
    }
  } finally {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* killed by the daemon */
    }
  }
  const restartedMs = performance.now() - t0;
  assert.match(st.bgp.daemon.lastExit, /^hung: no answer on the control socket for \d+ s/);
  assert.ok(sawHung, 'status showed the hung BIRD before its restart');
  await f.waitNexthops((h) => h.includes(d1.ip), 20_000, 'd1 announcing again');
  const backMs = performance.now() - t0;
  st = await f.status(d1);
  for (let i = 0; i < 20 && st.bgp.neighbours[0].state !== 'Established'; i++) {
    await sleep(250);
    st = await f.status(d1);
  }
  assert.equal(st.bgp.neighbours[0].state, 'Established');
  const metrics = (await f.cli(d1, ['metrics'])).stdout;
  assert.match(metrics, new RegExp(`xdirector_bgp_daemon_restarts_total ${restarts + 1}`));
  assert.match(metrics, /xdirector_bgp_daemon_up 1/);
  assert.ok(
    d1.log.some((l) => /bird hung: no answer on the control socket/.test(l)),
    'the kill is logged',
  );
  measured.hungBird = { restartedMs: Math.round(restartedMs), announcedAgainMs: Math.round(backMs) };
});

test('a health round that never completes withdraws the VIPs once the snapshot is stale, with an alert, and gives up the inner gateway (VRRP Fault) with them; both return when rounds resume', async () => {
  await f.waitNexthops((h) => h.includes(d1.ip), 20_000, 'd1 announcing');
  await waitGateway(true, 5_000);
  const pid = d1.child!.pid!;
  const t0 = performance.now();
  process.kill(pid, 'SIGUSR2');
  let stalledFor: number;
  try {
    await f.waitNexthops((h) => !h.includes(d1.ip), 20_000, 'd1 withdrawn while its health rounds are stalled');
    stalledFor = performance.now() - t0;
    const st = await f.status(d1);
    assert.match(st.liveness.cannotServe, /^the health snapshot is [\d.]+ s old/);
    assert.match(st.liveness.stalled, /^the health snapshot is/, 'the watchdog is withheld too');
    assert.ok(
      st.alerts.some((a: string) => /this director cannot serve: the health snapshot/.test(a)),
      JSON.stringify(st.alerts),
    );
    assert.match(st.bgp.withdrawnBecause[VIP], /this director cannot serve: the health snapshot/);
    assert.ok(
      d1.log.some((l) => /health check round not finished within \d+ ms/.test(l)),
      'the overdue round is logged',
    );
    // The gateway follows the same rule: the director tracker failed, the instance is in Fault.
    await waitGateway(false, 3_000);
    assert.equal((await f.status(d1)).vrrp[0].state, 'FAULT');
  } finally {
    process.kill(pid, 'SIGUSR2');
  }
  const t1 = performance.now();
  await f.waitNexthops((h) => h.includes(d1.ip), 20_000, 'd1 announcing again after rounds resume');
  await waitGateway(true, 5_000);
  const st = await f.status(d1);
  assert.equal(st.liveness.cannotServe, null);
  assert.equal(st.vrrp[0].state, 'MASTER');
  measured.stalledHealth = {
    withdrawnAfterMs: Math.round(stalledFor),
    limitMs: st.liveness.limitMs,
    announcedAgainMs: Math.round(performance.now() - t1),
  };
  // The limit runs from the last completed round, up to one interval (1 s) before SIGUSR2: max(3 x 1 s, 0.9 + 0.9 s + 5 s floor).
  assert.ok(
    stalledFor >= st.liveness.limitMs - 1500,
    `withdrawn after ${stalledFor} ms, before the limit ${st.liveness.limitMs} ms`,
  );
});

test('XDP TX errors that keep rising withdraw the VIPs; when they stop for a while the VIPs are announced again', async () => {
  await f.waitNexthops((h) => h.includes(d1.ip), 20_000, 'd1 announcing');
  // Native XDP_TX on veth is delivered only while the peer has an XDP program: without it every
  // forwarded frame becomes rx_queue_*_xdp_tx_errors on d1's eth0.
  await run('ip', ['-n', f.sw, 'link', 'set', 'dev', `p-${d1.name}`, 'xdpdrv', 'off']);
  const t0 = performance.now();
  let attempts = 0;
  try {
    for (;;) {
      const hops = await f.nexthops();
      if (!hops.includes(d1.ip)) break;
      if (performance.now() - t0 > 15_000)
        assert.fail('d1 still announced 15 s after its forwarded frames turned into TX errors');
      await connectFromClient(VIP, 3306, 300);
      attempts++;
    }
    const withdrawnMs = performance.now() - t0;
    const st = await f.status(d1);
    assert.equal(st.liveness.txErrorsRising, true);
    assert.match(st.bgp.withdrawnBecause[VIP], /this director cannot serve: the driver is dropping forwarded frames/);
    assert.ok(st.dataplane.detail.driverTxErrors.txErrors > 0, JSON.stringify(st.dataplane.detail.driverTxErrors));
    assert.match((await f.cli(d1, ['metrics'])).stdout, /xdirector_bgp_vip_announced\{vip="10\.77\.0\.100"\} 0/);
    measured.txErrors = {
      withdrawnMs: Math.round(withdrawnMs),
      connectAttempts: attempts,
      driverTxErrors: st.dataplane.detail.driverTxErrors.txErrors,
    };
  } finally {
    await run('ip', [
      '-n',
      f.sw,
      'link',
      'set',
      'dev',
      `p-${d1.name}`,
      'xdpdrv',
      'obj',
      defaultXdpPassObject(),
      'sec',
      'xdp',
    ]);
  }
  const t1 = performance.now();
  await f.waitNexthops((h) => h.includes(d1.ip), 25_000, 'd1 announcing again once TX errors stopped');
  const back = await connectFromClient(VIP, 3306, 3000);
  assert.equal(back.result, 'connected', JSON.stringify(back));
  (measured.txErrors as Record<string, unknown>).announcedAgainMs = Math.round(performance.now() - t1);
});
