// `xdirector run` against real IPVS and XDP: boots Debian's kernel under qemu
// (scripts/vm/run.sh), runs test/vm/guest/daemon.sh in the guest (DR lab plus a tunnel-mode real
// server behind a router, the daemon in the director namespace, phases A/B/C/T described there)
// and asserts on what it recorded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { skip, bootGuest } from './harness';
import { parseIpvsConns } from '../../src/dataplane/ipvs/conns';

let out = '';
let rc = -1;
let wallMs = 0;
let console_ = '';

before(
  async () => {
    if (skip) return;
    ({ rc, wallMs, out } = await bootGuest('test/vm/guest/daemon.sh', 1080, 'vmd'));
    console_ = read('console.log');
  },
  { timeout: 1_140_000 },
);

after(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

function read(name: string): string {
  const p = join(out, name);
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}
function json(name: string): any {
  const s = read(name);
  assert.ok(s, `${name} was not written by the guest; console tail:\n${console_.slice(-2500)}`);
  return JSON.parse(s);
}
/** `ipvsadm -Ln` -> { "TCP 10.77.0.100:3306 mh (...)": [["10.77.0.11:3306", weight], ...] }; `fwd` ("Route", "Tunnel") keeps only those dests. */
function ipvsadm(name: string, fwd = 'Route'): Record<string, Array<[string, number]>> {
  const res: Record<string, Array<[string, number]>> = {};
  let cur: Array<[string, number]> | undefined;
  for (const l of read(name).split('\n')) {
    const s = /^(TCP|UDP)\s+(.*?)\s*$/.exec(l);
    if (s) {
      res[`${s[1]} ${s[2]}`] = cur = [];
      continue;
    }
    const d = DEST.exec(l);
    if (d && cur && d[2] === fwd) cur.push([d[1]!, Number(d[4])]);
  }
  for (const k of Object.keys(res)) res[k]!.sort();
  return res;
}
/** A dest line of `ipvsadm -Ln [--tun-info]`: address, forward, tunnel info ("ipip", "gue:6080:-c", "n/a"), weight. */
const DEST = /^\s+->\s+(\S+)\s+(Route|Tunnel|Masq)\s+(?:([a-z]\S*)\s+)?(\d+)\s/;
/** `ipvsadm -Ln --tun-info` -> { "10.78.1.11:3310": "gue:6080:-c", ... } for the Tunnel dests. */
function tunInfo(name: string): Record<string, string> {
  const res: Record<string, string> = {};
  for (const l of read(name).split('\n')) {
    const d = DEST.exec(l);
    if (d && d[2] === 'Tunnel') res[d[1]!] = d[3] ?? '';
  }
  return res;
}
/** Packet counters of one real-server link from `ip -s -j link show`. */
function linkStats(name: string, ifname: string): { rx: number; tx: number } {
  const l = (
    json(name) as Array<{ ifname: string; stats64?: { rx: { packets: number }; tx: { packets: number } } }>
  ).find((x) => x.ifname === ifname);
  assert.ok(l?.stats64, `${ifname} not in ${name}`);
  return { rx: l.stats64.rx.packets, tx: l.stats64.tx.packets };
}
/** The change of a link's counters between two `tun_stats` snapshots. */
function linkDelta(before: string, after: string, ifname: string): { rx: number; tx: number } {
  const a = linkStats(`${before}-links.json`, ifname);
  const b = linkStats(`${after}-links.json`, ifname);
  return { rx: b.rx - a.rx, tx: b.tx - a.tx };
}
/** UDP datagrams received by the real server between two snapshots (/proc/net/snmp Udp InDatagrams). */
function udpInDelta(before: string, after: string): number {
  const get = (n: string): number => {
    const lines = read(`${n}-snmp.txt`)
      .split('\n')
      .filter((l) => l.startsWith('Udp:'));
    const [head, vals] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/)];
    return Number(vals[head.indexOf('InDatagrams')]);
  };
  return get(after) - get(before);
}
/** Every connection of a tcp-client run answered by the tunnel real server. */
function allTun1(name: string, n = 12): void {
  const { counts, errors } = servers(name);
  assert.deepEqual(errors, [], name);
  assert.deepEqual(counts, { tun1: n }, name);
}
function servers(name: string): { counts: Record<string, number>; errors: unknown[] } {
  const r = json(name).results as Array<{ server?: string; error?: string }>;
  const counts: Record<string, number> = {};
  for (const x of r) if (x.server) counts[x.server] = (counts[x.server] ?? 0) + 1;
  return { counts, errors: r.filter((x) => !x.server) };
}
const all3 = (port: number, w2 = 1): Array<[string, number]> => [
  [`10.77.0.11:${port}`, 1],
  [`10.77.0.12:${port}`, w2],
  [`10.77.0.13:${port}`, 1],
];

test('the guest runs the daemon scenario to the end with exit status 0', { skip }, (t) => {
  t.diagnostic(
    `VM wall ${(wallMs / 1000).toFixed(1)} s; guest userspace at ${/XD-VM-UPTIME ([\d.]+)/.exec(console_)?.[1]} s; steps: ${read('steps.txt').trim().split('\n').join('; ')}`,
  );
  assert.equal(rc, 0, `run.sh exit ${rc}; console tail:\n${console_.slice(-3000)}`);
});

test('xdirector run with dataplane ipvs programs what the config says and ipvsadm -Ln agrees', { skip }, () => {
  const a = ipvsadm('a-ipvsadm.txt');
  assert.deepEqual(
    {
      mysql: a['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'],
      echo: a['TCP 10.77.0.100:3307 mh (mh-fallback,mh-port)'],
    },
    { mysql: all3(3306), echo: all3(3307) },
  );
  assert.equal(read('a-sloppy.txt').trim(), '1', 'net.ipv4.vs.sloppy_tcp in the director namespace');
});

test('connections through the VIP in IPVS mode spread over the three backends', { skip }, () => {
  const { counts, errors } = servers('a-conns.json');
  assert.deepEqual(errors, []);
  for (const b of ['rs1', 'rs2', 'rs3']) assert.ok((counts[b] ?? 0) >= 5, JSON.stringify(counts));
});

test("xdirector drain sets the backend's IPVS weight to 0 and it gets no new connections", { skip }, () => {
  assert.deepEqual(ipvsadm('a-drain-ipvsadm.txt')['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'], all3(3306, 0));
  const { counts, errors } = servers('a-drain-conns.json');
  assert.deepEqual(errors, []);
  assert.equal(counts.rs2, undefined, JSON.stringify(counts));
});

test(
  'a backend whose server stops is removed from IPVS by the health checks and re-added when it is back',
  { skip },
  (t) => {
    t.diagnostic(`down after ${read('a-down-seconds.txt').trim()} s, up after ${read('a-up-seconds.txt').trim()} s`);
    assert.deepEqual(ipvsadm('a-down-ipvsadm.txt')['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'], [
      ['10.77.0.11:3306', 1],
      ['10.77.0.12:3306', 1],
    ]);
    const { counts, errors } = servers('a-down-conns.json');
    assert.deepEqual(errors, []);
    assert.equal(counts.rs3, undefined);
    assert.deepEqual(ipvsadm('a-up-ipvsadm.txt')['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'], all3(3306));
    const st = json('a-status.json');
    assert.equal(st.dataplane.kind, 'ipvs');
  },
);

test('stopping the daemon leaves the IPVS services in place for a restart', { skip }, () => {
  assert.equal(Object.keys(ipvsadm('a-after-stop-ipvsadm.txt')).length, 4, 'mysql, echo, nat, nat6');
});

test(
  "xdirector realserver setup --nat makes the director's inner address the NAT real server's default route, and check agrees",
  { skip },
  () => {
    assert.match(
      read('n-check-before.txt'),
      /MISSING IPv4 replies to clients beyond this network go nowhere \(no default route\)[^\n]*\n\s+fix: ip -4 route replace default via 10\.79\.0\.1/,
    );
    assert.match(read('n-check-before.txt'), /exit 1\s*$/);
    assert.match(read('n-setup.txt'), /IPv4 default route via 10\.79\.0\.1 .*\n.*IPv6 default route via fd00:79::1 /);
    assert.match(read('n-setup.txt'), /exit 0\s*$/);
    assert.match(read('n-check-after.txt'), /this server is ready for NAT\nexit 0\s*$/);
  },
);

test(
  "IPVS programs forwarding: nat as masquerading dests on the backend's own port, and sets the forwarding sysctls",
  { skip },
  () => {
    const nat = ipvsadm('a-nat-ipvsadm.txt', 'Masq');
    assert.deepEqual(nat['TCP 10.77.0.100:3311 mh (mh-fallback,mh-port)'], [['10.79.0.11:3306', 1]]);
    assert.deepEqual(nat['TCP [fd00:77::100]:3311 mh (mh-fallback,mh-port)'], [['[fd00:79::11]:3306', 1]]);
    // ip_forward and IPv6 forwarding on; all.send_redirects untouched (1): this NAT is two-armed.
    assert.deepEqual(read('a-nat-sysctls.txt').trim().split('\n'), ['1', '1', '1']);
    const st = json('a-status.json');
    const byName = new Map(
      (st.dataplane.services as Array<{ name: string; forwarding: string }>).map((x) => [x.name, x.forwarding]),
    );
    assert.equal(byName.get('nat'), 'nat');
    assert.equal(byName.get('nat6'), 'nat');
    assert.equal(st.dataplane.detail.sysctls['net.ipv4.ip_forward'], '1');
  },
);

test(
  'connections to VIP:3311 reach the NAT real server on 3306 over IPv4 and IPv6, its replies translated back by IPVS',
  { skip },
  () => {
    for (const name of ['a-nat-conns.json', 'a-nat6-conns.json']) {
      const { counts, errors } = servers(name);
      assert.deepEqual(errors, [], name);
      assert.deepEqual(counts, { nat1: 12 }, name);
    }
    // `ipvsadm -Ln --stats`: Conns InPkts OutPkts InBytes OutBytes; OutPkts are the replies IPVS un-NATed.
    const line = read('a-nat-stats.txt')
      .split('\n')
      .find((l) => /^TCP\s+10\.77\.0\.100:3311\s/.test(l));
    assert.ok(line, read('a-nat-stats.txt'));
    const [conns, inPkts, outPkts] = line.trim().split(/\s+/).slice(2).map(Number) as [number, number, number];
    assert.ok(conns >= 12 && inPkts > 0 && outPkts >= 12 * 2, line);
    // status (taken after those connections) shows the masquerading dest's Out counters, as ipvsadm does.
    const nat = (
      json('a-status.json').dataplane.services as Array<{
        name: string;
        outPackets?: number;
        backends: Array<{ outPackets?: number; outBytes?: number }>;
      }>
    ).find((x) => x.name === 'nat');
    assert.ok(nat && (nat.outPackets ?? 0) >= 12 * 2, JSON.stringify(nat));
    assert.ok(
      (nat.backends[0]?.outPackets ?? 0) >= 12 * 2 && (nat.backends[0]?.outBytes ?? 0) > 0,
      JSON.stringify(nat),
    );
  },
);

test('dataplane auto falls back to IPVS when XDP cannot attach, logging why', { skip }, () => {
  assert.equal(json('b-status.json').dataplane.kind, 'ipvs');
  const log = read('b.log');
  assert.match(log, /XDP unavailable, falling back to IPVS: /);
  const { errors } = servers('b-conns.json');
  assert.deepEqual(errors, []);
  assert.deepEqual(ipvsadm('b-after-detach-ipvsadm.txt'), {}, 'stop --detach removes the IPVS services');
});

test(
  'xdirector dataplane ipvs and back to xdp switches the live dataplane and status shows which is active',
  { skip },
  (t) => {
    t.diagnostic(
      `switch to ipvs ${read('c-switch-ipvs-seconds.txt').trim()} s, back to xdp ${read('c-switch-xdp-seconds.txt').trim()} s`,
    );
    assert.equal(json('c-status-xdp.json').dataplane.kind, 'xdp');
    assert.match(read('c-switch-ipvs.txt'), /switched from xdp to ipvs/);
    assert.equal(json('c-status-ipvs.json').dataplane.kind, 'ipvs');
    // mysql, echo, nat, nat6, natecho, natpush and the four tunnel services
    assert.equal(Object.keys(ipvsadm('c-ipvsadm.txt')).length, 10);
    assert.match(read('c-switch-xdp.txt'), /switched from ipvs to xdp/);
    assert.equal(json('c-status-xdp2.json').dataplane.kind, 'xdp');
    assert.deepEqual(
      ipvsadm('c-after-xdp-ipvsadm.txt'),
      {},
      'the IPVS services are removed once XDP carries the traffic',
    );
  },
);

test('a live session survives xdp -> ipvs -> xdp on the same backend', { skip }, () => {
  const s = json('c-session.json');
  assert.equal(s.error, '');
  assert.equal(s.closed, false);
  assert.equal(s.backendChanges, 0);
  assert.ok(s.sent >= 20, `sent ${s.sent}`);
  assert.equal(s.unanswered, 0, JSON.stringify(s));
  assert.equal(s.echoed, s.sent);
});

// ---- NAT across the switches: two-armed over eth1, ports translated (nat-topology.sh)

test('a live NAT session (VIP:3313 -> 10.79.0.11:3312, two-armed) survives xdp -> ipvs -> xdp', { skip }, (t) => {
  const s = json('c-nat-session.json');
  t.diagnostic(`sent ${s.sent}, longest round trip ${s.maxRttMs} ms, longest gap between echoes ${s.maxGapMs} ms`);
  assert.equal(s.error, '');
  assert.equal(s.closed, false);
  assert.equal(s.backend, 'nat1');
  assert.equal(s.backendChanges, 0);
  assert.ok(s.sent >= 20, `sent ${s.sent}`);
  assert.equal(s.unanswered, 0, JSON.stringify(s));
  assert.equal(s.echoed, s.sent);
});

test('NAT connections to VIP:3311 reach 10.79.0.11:3306 through XDP, then IPVS, then XDP again', { skip }, () => {
  for (const name of ['c-nat-xdp.json', 'c-nat-ipvs.json', 'c-nat-xdp2.json']) {
    const { counts, errors } = servers(name);
    assert.deepEqual(errors, [], name);
    assert.deepEqual(counts, { nat1: 8 }, name);
  }
});

test(
  "a NAT reply sent right after a switch, while the client is silent: after xdp -> ipvs it gets through only after the client's next packet, after ipvs -> xdp at once (XDP took over IPVS's NAT connections)",
  { skip },
  (t) => {
    // The server on 10.79.0.11:3314 sends p0 under XDP, p1 right after `dataplane ipvs`
    // returned, p2 once the client has sent k1, p3 right after `dataplane xdp` returned, p4
    // once the client has sent k2. The client sends nothing else (not even an ACK while it has
    // received nothing) until k1 and k2, 4 s after p1 and p3.
    const q = json('c-nat-quiet.json') as {
      backend: string;
      closed: boolean;
      error: string;
      events: Array<{ t: number; kind: 'recv' | 'send'; line: string }>;
    };
    const pushed = new Map(
      read('c-nat-quiet-pushes.log')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { t: number; push: string })
        .map((p) => [p.push, p.t]),
    );
    const at = (kind: 'recv' | 'send', line: string): number => {
      const e = q.events.find((x) => x.kind === kind && x.line === line);
      assert.ok(e, `${kind} ${line} not in ${JSON.stringify(q.events)}`);
      return e.t;
    };
    assert.equal(q.backend, 'nat1');
    assert.equal(q.error, '');
    assert.equal(q.closed, false);
    assert.deepEqual(
      q.events.map((e) => `${e.kind} ${e.line}`),
      ['recv p0', 'send k1', 'recv p1', 'recv p2', 'recv p3', 'send k2', 'recv p4'],
      'p1 (xdp -> ipvs, in the window) arrives only after the client sent again; p0, p2, p3 and p4 at once',
    );
    // The window was real: the server retransmitted p1 for seconds (RTO 0.2 s, doubling) before
    // the client's packet, and none of those copies reached it: IPVS makes no connection from a
    // reply (ip_vs_out looks one up, never schedules).
    assert.ok(
      at('send', 'k1') - pushed.get('p1')! >= 3500,
      `p1 pushed ${pushed.get('p1')}, k1 sent ${at('send', 'k1')}`,
    );
    // ipvs -> xdp: the switch read IPVS's live connections and installed the NAT ones' reverse
    // entries before removing the IPVS services (the session on 3313 and this one at least).
    const took = /"connections":(\d+),"nat":(\d+),"msg":"xdp took over \d+ live NAT connections of ipvs"/.exec(
      read('c.log'),
    );
    assert.ok(took && Number(took[2]) >= 2, `c.log: ${took?.[0]}`);
    const left = read('c-after-xdp-ipvs-conns.txt')
      .split('\n')
      .filter((l) => /^(TCP|UDP) /.test(l)).length;
    t.diagnostic(
      `xdp -> ipvs: p1 arrived ${at('recv', 'p1') - at('send', 'k1')} ms after k1 (${at('recv', 'p1') - pushed.get('p1')!} ms after it was sent); ` +
        `ipvs -> xdp: p3 arrived ${at('recv', 'p3') - pushed.get('p3')!} ms after it was sent; ` +
        `handed over: ${took[1]} live IPVS connections, ${took[2]} of them NAT; IPVS connections left right after the switch: ${left}`,
    );
    // Under IPVS, the client's k1 (mid-stream, no SYN) made the masquerading connection
    // (sloppy_tcp) that translated p1's next retransmission and p2.
    assert.match(
      read('c-ipvs-conns.txt'),
      /^TCP\s+\S+\s+ESTABLISHED\s+10\.77\.0\.10:40003\s+10\.77\.0\.100:3315\s+10\.79\.0\.11:3314\s*$/m,
    );
    // ... and the kernel's own table, as the switch reads it, has it
    assert.deepEqual(
      parseIpvsConns(read('c-ipvs-conns-proc.txt')).find((c) => c.clientPort === 40003),
      {
        family: 4,
        proto: 'tcp',
        client: '10.77.0.10',
        clientPort: 40003,
        vip: '10.77.0.100',
        vipPort: 3315,
        backend: '10.79.0.11',
        backendPort: 3314,
      },
      read('c-ipvs-conns-proc.txt'),
    );
  },
);

test('connections opened during each switch succeed', { skip }, () => {
  for (const f of ['c-during-ipvs.json', 'c-during-xdp.json']) assert.deepEqual(servers(f).errors, [], f);
});

// ---- tunnel mode: a real server on another subnet, behind a router (tunnel-topology.sh)

test(
  'xdirector realserver setup --tunnel creates an ipip and an ip6tnl device in external mode and a GUE port',
  { skip },
  () => {
    for (const f of ['t-setup4.txt', 't-setup6.txt']) assert.match(read(f), /\n0\n$/, `${f}: ${read(f)}`);
    assert.match(read('t-setup4.txt'), /created xdipip/);
    assert.match(read('t-setup6.txt'), /created xdip6tnl/);
    const links = json('t-setup-links.json') as Array<{
      ifname: string;
      flags: string[];
      linkinfo?: { info_kind: string; info_data?: { external?: boolean } };
    }>;
    for (const [dev, kind] of [
      ['xdipip', 'ipip'],
      ['xdip6tnl', 'ip6tnl'],
    ] as const) {
      const l = links.find((x) => x.ifname === dev);
      assert.equal(l?.linkinfo?.info_kind, kind, `${dev}: ${JSON.stringify(l)}`);
      assert.equal(l.linkinfo.info_data?.external, true, `${dev} in external (collect_md) mode: ${JSON.stringify(l)}`);
      assert.ok(l.flags.includes('UP'), `${dev} up`);
    }
    assert.match(read('t-setup-fou.txt'), /port 6080 gue/);
  },
);

test("IPVS programs the tunnel services as Tunnel destinations with the service's encapsulation", { skip }, () => {
  const t = read('c-tun-ipvsadm.txt');
  const tunnels = Object.fromEntries(
    Object.entries(ipvsadm('c-tun-ipvsadm.txt', 'Tunnel')).filter(([, d]) => d.length),
  );
  assert.deepEqual(
    tunnels,
    {
      'TCP 10.77.0.100:3308 mh (mh-fallback,mh-port)': [['10.78.1.11:3308', 1]],
      'TCP 10.77.0.100:3309 mh (mh-fallback,mh-port)': [['10.78.1.11:3309', 1]],
      'TCP 10.77.0.100:3310 mh (mh-fallback,mh-port)': [['10.78.1.11:3310', 1]],
      'TCP [fd00:77::100]:3308 mh (mh-fallback,mh-port)': [['[fd00:78:1::11]:3308', 1]],
    },
    t,
  );
  // -c: no outer UDP checksum (IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM), as the XDP program sends GUE
  assert.deepEqual(
    tunInfo('c-tun-ipvsadm.txt'),
    {
      '10.78.1.11:3308': 'ipip',
      '10.78.1.11:3309': 'ipip',
      '10.78.1.11:3310': 'gue:6080:-c',
      '[fd00:78:1::11]:3308': 'ipip',
    },
    t,
  );
  const st = json('c-status-ipvs.json') as {
    dataplane: { services: Array<{ port: number; vip: string; forwarding: string }> };
  };
  const fwd = Object.fromEntries(st.dataplane.services.map((s) => [`${s.vip}:${s.port}`, s.forwarding]));
  assert.equal(fwd['10.77.0.100:3308'], 'tunnel/ipip');
  assert.equal(fwd['10.77.0.100:3310'], 'tunnel/gue:6080');
  assert.equal(fwd['fd00:77::100:3308'], 'tunnel/ipip');
  assert.equal(fwd['10.77.0.100:3306'], 'dr');
});

test(
  'IPVS forwards tunnel services to the real server behind the router, which decapsulates and answers the client directly',
  { skip },
  (t) => {
    allTun1('c-tun-ipvs.json');
    allTun1('c-gue-ipvs.json');
    allTun1('c-tun6-ipvs.json');
    const v4 = linkDelta('c-tun-ipvs-before', 'c-tun-ipvs-after', 'xdipip');
    const v6 = linkDelta('c-tun-ipvs-before', 'c-tun-ipvs-after', 'xdip6tnl');
    const udp = udpInDelta('c-tun-ipvs-before', 'c-tun-ipvs-after');
    t.diagnostic(`decapsulated: xdipip ${v4.rx} (IPIP + GUE), xdip6tnl ${v6.rx}; UDP datagrams in ${udp}`);
    // each connection: SYN, ACK, FIN/ACK at least, client to server; replies never enter a tunnel
    assert.ok(v4.rx >= 2 * 12 * 3, JSON.stringify(v4));
    assert.ok(v6.rx >= 12 * 3, JSON.stringify(v6));
    assert.ok(udp >= 12 * 3, `GUE arrives as UDP: ${udp}`);
    assert.deepEqual([v4.tx, v6.tx], [0, 0], 'replies go straight to the client, not back through a tunnel');
  },
);

test('a live tunnelled session survives xdp -> ipvs -> xdp', { skip }, () => {
  const s = json('c-tun-session.json');
  assert.equal(s.backend, 'tun1');
  assert.equal(s.error, '');
  assert.equal(s.closed, false);
  assert.equal(s.backendChanges, 0);
  assert.ok(s.sent >= 20, `sent ${s.sent}`);
  assert.equal(s.unanswered, 0, JSON.stringify(s));
  assert.equal(s.echoed, s.sent);
});

test(
  'after the switch back to XDP, new tunnelled connections go through XDP encapsulating IPIP, GUE and 6in6',
  { skip },
  (t) => {
    allTun1('c-tun-xdp.json');
    allTun1('c-gue-xdp.json');
    allTun1('c-tun6-xdp.json');
    assert.deepEqual(ipvsadm('c-after-xdp-ipvsadm.txt'), {}, 'no IPVS service: XDP carries the tunnel services');
    const v4 = linkDelta('c-tun-xdp-before', 'c-tun-xdp-after', 'xdipip');
    const v6 = linkDelta('c-tun-xdp-before', 'c-tun-xdp-after', 'xdip6tnl');
    const udp = udpInDelta('c-tun-xdp-before', 'c-tun-xdp-after');
    t.diagnostic(`XDP: decapsulated xdipip ${v4.rx}, xdip6tnl ${v6.rx}; UDP datagrams in ${udp}`);
    assert.ok(v4.rx >= 2 * 12 * 3, JSON.stringify(v4));
    assert.ok(v6.rx >= 12 * 3, JSON.stringify(v6));
    assert.ok(udp >= 12 * 3, `GUE arrives as UDP: ${udp}`);
    assert.deepEqual([v4.tx, v6.tx], [0, 0]);
  },
);

test(
  'xdirector realserver check --tunnel passes on the set-up server and names strict rp_filter once it is back',
  { skip },
  () => {
    const ok = read('t-check-ok.txt');
    assert.match(ok, /exit 0\n$/, ok);
    assert.doesNotMatch(ok, /MISSING/, ok);
    assert.match(ok, /this server is ready for tunnel mode \(gue\)/);
    // The tunnelled connections above passed the real server's nftables filter (--director).
    assert.match(ok, /accepts tunnels only from 10\.77\.0\.2/, ok);
    const bad = read('t-check-rpf.txt');
    assert.match(bad, /exit 1\n$/, bad);
    assert.match(bad, /MISSING rp_filter on xdipip is strict/, bad);
    assert.match(bad, /fix: sysctl -w net\.ipv4\.conf\.all\.rp_filter=/, bad);
  },
);

test('xdirector realserver teardown --tunnel leaves no tunnel device, fou port, VIP or sysctl file', { skip }, () => {
  for (const f of ['t-teardown4.txt', 't-teardown6.txt']) assert.match(read(f), /exit 0\n$/, `${f}: ${read(f)}`);
  const links = (json('t-after-links.json') as Array<{ ifname: string }>).map((l) => l.ifname);
  assert.ok(!links.includes('xdipip') && !links.includes('xdip6tnl'), links.join(' '));
  assert.equal(read('t-after-fou.txt').trim(), '');
  const lo = json('t-after-lo.json') as Array<{ addr_info: Array<{ local: string }> }>;
  assert.deepEqual(lo[0]!.addr_info.map((a) => a.local).sort(), ['127.0.0.1', '::1']);
  assert.equal(read('t-after-sysctl-file.txt'), '', 'the sysctl file is removed');
});

test(
  'xdirector realserver setup --tunnel records the strict rp_filter it lowers and teardown puts it back',
  { skip },
  () => {
    const again = read('t-resetup4.txt');
    assert.match(again, /exit 0\n$/, again);
    assert.match(again, /set net\.ipv4\.conf\.all\.rp_filter=0 \(.*; was 1, teardown puts it back\)/, again);
    assert.match(read('t-teardown4.txt'), /restored net\.ipv4\.conf\.all\.rp_filter=1/);
    assert.equal(read('t-after-rpf.txt').trim(), '1', 'strict again, as before setup');
    assert.equal(read('t-after-tunnel-state.txt'), '', 'the record is removed');
  },
);
