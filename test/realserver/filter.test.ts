// The real server's tunnel filter (src/realserver/filter.ts) and what setup / check / teardown
// --tunnel do about devices and tables they did not create (src/realserver/tunnel.ts).
//
// Resources: namespaces xtrf<pid> (the real server) and xtrf<pid>p (a director at 10.93.0.1 and a
// stranger at 10.93.0.9, over the veth pair xtrf<pid>a / eth0), the nftables table inet
// xdirector_rs inside the first, a state directory under the temp dir; all removed in after().
// This kernel has no ipip / fou (test/realserver/tunnel.test.ts), so setup's success path is not
// reached here; the filter is loaded and read through the same functions setup and check call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deviceProblem, TunnelRecord, tunnelRecipe } from '../../src/realserver/tunnel';
import { filterRuleset } from '../../src/realserver/filter';
import { XdError } from '../../src/errors';

const NS = `xtrf${process.pid}`;
const PEER = `${NS}p`;
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), `${NS}-`));
const BIN = path.resolve(__dirname, '../../../bin/xdirector.js');
const TUNNEL = path.resolve(__dirname, '../../src/realserver/tunnel.js');
const FILTER = path.resolve(__dirname, '../../src/realserver/filter.js');
const sh = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Runs `js` (with t = tunnel.js, f = filter.js) in the real server's namespace; its value as JSON. */
function inNs(js: string, env: NodeJS.ProcessEnv = process.env): { ok: boolean; out: string } {
  const prog = `const t=require(${JSON.stringify(TUNNEL)}),f=require(${JSON.stringify(FILTER)});(async()=>{${js}})().then((v)=>{process.stdout.write(JSON.stringify(v));},(e)=>{process.stdout.write(JSON.stringify({error:e.message,code:e.code}));process.exitCode=1;});`;
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', prog], { encoding: 'utf8', env });
  return { ok: r.status === 0, out: r.stdout || r.stderr };
}
type NftItem = { table?: { name: string }; rule?: { comment?: string; expr?: { counter?: { packets: number } }[] } };
const nftJson = () =>
  (
    JSON.parse(execFileSync('ip', ['netns', 'exec', NS, 'nft', '-j', 'list', 'ruleset'], { encoding: 'utf8' })) as {
      nftables: NftItem[];
    }
  ).nftables;
const tables = () =>
  nftJson()
    .filter((i) => i.table)
    .map((i) => i.table!.name);
/** The packets counted by the drop rule with this comment. */
const dropped = (comment: string) =>
  nftJson()
    .find((i) => i.rule?.comment === comment)
    ?.rule?.expr?.find((e) => e.counter)?.counter?.packets;

before(() => {
  sh(['netns', 'add', NS]);
  sh(['netns', 'add', PEER]);
  sh(['-n', NS, 'link', 'add', `${NS}a`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', PEER]);
  sh(['-n', NS, 'addr', 'add', '10.93.0.2/24', 'dev', `${NS}a`]);
  sh(['-n', PEER, 'addr', 'add', '10.93.0.1/24', 'dev', 'eth0']);
  sh(['-n', PEER, 'addr', 'add', '10.93.0.9/24', 'dev', 'eth0']);
  for (const [n, d] of [
    [NS, `${NS}a`],
    [NS, 'lo'],
    [PEER, 'eth0'],
    [PEER, 'lo'],
  ] as const)
    sh(['-n', n, 'link', 'set', d, 'up']);
});
after(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  spawnSync('ip', ['netns', 'del', PEER]);
  fs.rmSync(DIR, { recursive: true, force: true });
});

test('the filter accepts IP protocols 4 and 41 and the GUE port from the directors only, per family', () => {
  const text = filterRuleset({ directors: ['10.93.0.1', 'FD00::1', '10.93.0.5'], guePort: 6080 });
  assert.match(text, /set directors_v4 \{\n\s+type ipv4_addr\n\s+elements = \{ 10\.93\.0\.1, 10\.93\.0\.5 \}/);
  assert.match(text, /set directors_v6 \{\n\s+type ipv6_addr\n\s+elements = \{ fd00::1 \}/);
  assert.match(
    text,
    /meta l4proto \{ 4, 41 \} ip saddr @directors_v4 accept\n\s+meta l4proto \{ 4, 41 \} ip6 saddr @directors_v6 accept\n\s+meta l4proto \{ 4, 41 \} counter drop/,
  );
  assert.match(text, /udp dport 6080 ip saddr @directors_v4 accept\n\s+udp dport 6080 counter drop/);
  assert.doesNotMatch(filterRuleset({ directors: ['10.93.0.1'] }), /udp dport/, 'no GUE rule without GUE');
  assert.throws(
    () => filterRuleset({ directors: ['director1'] }),
    (e: unknown) =>
      e instanceof XdError && e.code === 'XD_ERR_USAGE' && /--director director1: not an IP address/.test(e.message),
  );
});

test("in a namespace, nft drops tunnels and GUE from a stranger and lets the director's through; check sees the filter and its directors", () => {
  let r = inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"ipip",directors:["10.93.0.1"]});');
  assert.ok(r.ok, r.out);
  const before = JSON.parse(r.out) as { ok: boolean; what: string; fix?: string }[];
  const missing = before.find((f) => /nftables table inet xdirector_rs/.test(f.what))!;
  assert.equal(missing.ok, false, 'check flags the missing filter');
  assert.match(missing.what, /no nftables table inet xdirector_rs: the tunnel devices accept packets from any source/);
  assert.equal(missing.fix, 'xdirector realserver setup --vip ... --tunnel --director ADDR');

  r = inNs('return f.loadFilter({directors:["10.93.0.1"],guePort:6080});');
  assert.equal(r.out, 'true', r.out);
  const send = (src: string, proto: 'ipip' | 'gue', n: number) => {
    const py =
      proto === 'ipip'
        ? `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,4)\ns.bind(("${src}",0))\nfor i in range(${n}): s.sendto(bytes([0x45])+bytes(19),("10.93.0.2",0))`
        : `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(("${src}",0))\nfor i in range(${n}): s.sendto(bytes(8),("10.93.0.2",6080))`;
    execFileSync('ip', ['netns', 'exec', PEER, 'python3', '-c', py]);
  };
  send('10.93.0.1', 'ipip', 3);
  send('10.93.0.9', 'ipip', 2);
  send('10.93.0.1', 'gue', 4);
  send('10.93.0.9', 'gue', 1);
  assert.equal(dropped('tunnel not from a director'), 2, "only the stranger's IPIP packets are dropped");
  assert.equal(dropped('GUE not from a director'), 1, "only the stranger's GUE packet is dropped");

  r = inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"gue",directors:["10.93.0.1"]});');
  const ok = (JSON.parse(r.out) as { ok: boolean; what: string }[]).find((f) => /xdirector_rs/.test(f.what))!;
  assert.deepEqual(ok, { ok: true, what: 'inet xdirector_rs accepts tunnels only from 10.93.0.1' });
  r = inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"gue",directors:["10.93.0.1","10.93.0.3"]});');
  const partial = (JSON.parse(r.out) as { ok: boolean; what: string }[]).find((f) => /xdirector_rs/.test(f.what))!;
  assert.deepEqual(partial, {
    ok: false,
    what: 'inet xdirector_rs accepts tunnels from 10.93.0.1, not from 10.93.0.3',
    fix: 'xdirector realserver setup --vip ... --tunnel --director ADDR',
  });
});

test('teardown removes the nftables table only when setup recorded loading it', () => {
  const state = path.join(DIR, 'teardown.json');
  assert.ok(inNs('return f.loadFilter({directors:["10.93.0.1"]});').ok);
  let r = inNs(`return t.teardownTunnel({underlay:[4],inner:[4],encap:"ipip",stateFile:${JSON.stringify(state)}});`);
  assert.ok(r.ok, r.out);
  assert.ok(
    (JSON.parse(r.out) as string[]).includes('left nftables table inet xdirector_rs (setup did not load it)'),
    r.out,
  );
  assert.ok(tables().includes('xdirector_rs'), 'a table setup did not record is kept');
  new TunnelRecord(state).addCreated({ nftTable: 'inet xdirector_rs' });
  r = inNs(`return t.teardownTunnel({underlay:[4],inner:[4],encap:"ipip",stateFile:${JSON.stringify(state)}});`);
  assert.ok((JSON.parse(r.out) as string[]).includes('removed nftables table inet xdirector_rs'), r.out);
  assert.ok(!tables().includes('xdirector_rs'));
  assert.equal(fs.existsSync(state), false, 'nothing left to remember');
});

test('without nft, loading reports nothing done and check says the filter cannot be seen', () => {
  // A PATH with ip but no nft (what `command -v nft` finds, or not).
  const bin = path.join(DIR, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const ipPath = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
  fs.symlinkSync(ipPath, path.join(bin, 'ip'));
  const env = { ...process.env, PATH: bin };
  assert.equal(inNs('return f.loadFilter({directors:["10.93.0.1"]});', env).out, 'false');
  const found = JSON.parse(inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"ipip"});', env).out) as {
    ok: boolean;
    what: string;
    fix?: string;
  }[];
  const f = found.find((x) => /nft is not installed/.test(x.what));
  assert.ok(f && !f.ok && /apt-get install nftables/.test(f.fix!), JSON.stringify(found));
});

test('nft installed on a kernel without nf_tables: check names it as a finding with the fix, teardown still works', () => {
  // What Debian's nft prints on a kernel that has no nf_tables (seen in the VM before it loaded the module).
  const bin = path.join(DIR, 'bin-nonft');
  fs.mkdirSync(bin, { recursive: true });
  const ipPath = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
  fs.symlinkSync(ipPath, path.join(bin, 'ip'));
  fs.writeFileSync(
    path.join(bin, 'nft'),
    '#!/bin/sh\necho "mnl.c:60: Unable to initialize Netlink socket: Protocol not supported" >&2\nexit 1\n',
    { mode: 0o755 },
  );
  const env = { ...process.env, PATH: bin };
  const found = JSON.parse(inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"ipip"});', env).out) as {
    ok: boolean;
    what: string;
    fix?: string;
  }[];
  const f = found.find((x) => /nftables is not available in this kernel/.test(x.what));
  assert.ok(f && !f.ok && /modprobe nf_tables/.test(f.fix!), JSON.stringify(found));
  const state = path.join(DIR, 'nonft-state.json');
  const r = inNs(
    `return t.teardownTunnel({underlay:[4],inner:[4],encap:"ipip",stateFile:${JSON.stringify(state)}});`,
    env,
  );
  assert.ok(r.ok, r.out);
});

test('--director without --tunnel is a usage error naming the fix', () => {
  const r = spawnSync(process.execPath, [BIN, 'realserver', 'check', '--vip', '10.0.0.100', '--director', '10.0.0.1'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--director filters the tunnels of tunnel mode: add --tunnel/);
});

// ------------------------------------------------------------ devices: the kind, and ownership

test('a device is the tunnel only with the right kind and, for ipip / ip6tnl, in external mode', () => {
  const [ipip, sit, ip6] = tunnelRecipe({ underlay: [4, 6], inner: [4, 6], encap: 'ipip' }).devices as [
    never,
    never,
    never,
  ];
  assert.equal(
    deviceProblem(ipip, { ifname: 'xdipip', linkinfo: { info_kind: 'ipip', info_data: { external: true } } }),
    undefined,
  );
  assert.equal(
    deviceProblem(ipip, { ifname: 'xdipip', linkinfo: { info_kind: 'ipip', info_data: {} } }),
    'xdipip is ipip but not in external (collect_md) mode: it takes tunnels from one fixed remote only',
  );
  assert.equal(
    deviceProblem(ipip, { ifname: 'xdipip', linkinfo: { info_kind: 'bridge' } }),
    'xdipip is a bridge device, not ipip in external mode: it decapsulates nothing',
  );
  assert.equal(
    deviceProblem(ipip, { ifname: 'xdipip' }),
    'xdipip is a device of no tunnel kind, not ipip in external mode: it decapsulates nothing',
  );
  assert.equal(deviceProblem(sit, { ifname: 'sit0', linkinfo: { info_kind: 'sit' } }), undefined);
  assert.equal(
    deviceProblem(ip6, { ifname: 'xdip6tnl', linkinfo: { info_kind: 'ip6tnl', info_data: { external: true } } }),
    undefined,
  );
});

test('a bridge named xdipip: check flags it, setup refuses to use it, teardown leaves it (setup did not create it)', () => {
  const state = path.join(DIR, 'bridge.json');
  sh(['-n', NS, 'link', 'add', 'xdipip', 'type', 'bridge']);
  sh(['-n', NS, 'link', 'set', 'xdipip', 'up']);
  try {
    let r = inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"ipip"});');
    const dev = (JSON.parse(r.out) as { ok: boolean; what: string }[]).find((f) => f.what.startsWith('xdipip'))!;
    assert.deepEqual(
      [dev.ok, dev.what],
      [false, 'xdipip is a bridge device, not ipip in external mode: it decapsulates nothing'],
    );
    r = inNs(`return t.setupTunnel({underlay:[4],inner:[4],encap:"ipip",stateFile:${JSON.stringify(state)}});`);
    assert.equal(r.ok, false);
    assert.match(
      (JSON.parse(r.out) as { error: string }).error,
      /^xdipip is a bridge device, not ipip in external mode: it decapsulates nothing; it is not xdirector's: remove or rename it/,
    );
    r = inNs(`return t.teardownTunnel({underlay:[4],inner:[4],encap:"ipip",stateFile:${JSON.stringify(state)}});`);
    assert.ok(r.ok, r.out);
    assert.deepEqual(JSON.parse(r.out), ['left xdipip (setup did not create it)']);
    // Even recorded (setup created an xdipip once), one that is now a bridge is not removed.
    new TunnelRecord(state).addCreated({ devices: ['xdipip'] });
    r = inNs(`return t.teardownTunnel({underlay:[4],inner:[4],encap:"ipip",stateFile:${JSON.stringify(state)}});`);
    assert.deepEqual(JSON.parse(r.out), [
      'left xdipip (xdipip is a bridge device, not ipip in external mode: it decapsulates nothing)',
    ]);
    assert.equal(spawnSync('ip', ['-n', NS, 'link', 'show', 'xdipip']).status, 0, 'the bridge is still there');
  } finally {
    spawnSync('ip', ['-n', NS, 'link', 'del', 'xdipip']);
  }
});
