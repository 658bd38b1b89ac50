// xdirector realserver --nat in namespaces: a real server R on the director D's inner network
// and on another router O's network, its default route first via O; a client C beyond D (D
// forwards, O does not). A connection from C to R only works when R's replies go back through D:
// setup makes that so (the default route via --gateway, nothing else), check reports it,
// teardown puts O's default route back.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/xdirector.js');
const P = `xtnat${process.pid % 100000}`;
const [R, D, O, C] = ['r', 'd', 'o', 'c'].map((x) => `${P}${x}`) as [string, string, string, string];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
const stateFile = path.join(tmp, 'realserver-nat.json');
const GW = ['--gateway', '10.89.1.1', '--gateway', 'fd89:1::1'];

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
function xd(args: string[]) {
  return spawnSync('ip', ['netns', 'exec', R, process.execPath, BIN, 'realserver', ...args, '--nat-state', stateFile], {
    encoding: 'utf8',
  });
}
const defaults = (fam: 4 | 6) =>
  (JSON.parse(sh('ip', ['-n', R, '-j', `-${fam}`, 'route', 'show', 'default'])) as { gateway?: string }[]).map(
    (r) => r.gateway,
  );

/** Does a TCP connection from C to R's port 3306 get R's answer within 1.5 s? */
function connects(host: string): boolean {
  const js = `const s=require('net').connect({host:'${host}',port:3306});s.setTimeout(1500,()=>{process.stdout.write('timeout');process.exit(0)});s.on('data',(d)=>{process.stdout.write(String(d));process.exit(0)});s.on('error',(e)=>{process.stdout.write(e.code);process.exit(0)})`;
  return sh('ip', ['netns', 'exec', C, process.execPath, '-e', js]) === 'rs';
}

let server: ChildProcess | undefined;

before(async () => {
  for (const ns of [R, D, O, C]) sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', R, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', D]);
  sh('ip', ['-n', R, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', O]);
  sh('ip', ['-n', D, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C]);
  const addrs: Array<[string, string, string, string]> = [
    [R, 'eth0', '10.89.1.2/24', 'fd89:1::2/64'],
    [R, 'eth1', '10.89.2.2/24', 'fd89:2::2/64'],
    [D, 'eth0', '10.89.1.1/24', 'fd89:1::1/64'],
    [D, 'eth1', '10.89.3.1/24', 'fd89:3::1/64'],
    [O, 'eth0', '10.89.2.1/24', 'fd89:2::1/64'],
    [C, 'eth0', '10.89.3.2/24', 'fd89:3::2/64'],
  ];
  for (const [ns, dev, a4, a6] of addrs) {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', a4, 'dev', dev]);
    sh('ip', ['-n', ns, 'addr', 'add', a6, 'dev', dev, 'nodad']);
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  sh('ip', ['netns', 'exec', D, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  sh('ip', ['-n', C, 'route', 'add', 'default', 'via', '10.89.3.1']);
  sh('ip', ['-n', C, '-6', 'route', 'add', 'default', 'via', 'fd89:3::1']);
  // R's network configuration: the default via the other router, which does not forward.
  sh('ip', ['-n', R, 'route', 'add', 'default', 'via', '10.89.2.1']);
  sh('ip', ['-n', R, '-6', 'route', 'add', 'default', 'via', 'fd89:2::1']);
  server = spawn(
    'ip',
    [
      'netns',
      'exec',
      R,
      process.execPath,
      '-e',
      "require('net').createServer((s)=>s.end('rs')).listen(3306,'::',()=>console.log('up'))",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((res) => server!.stdout!.once('data', () => res()));
});

after(() => {
  server?.kill();
  for (const ns of [R, D, O, C]) spawnSync('ip', ['netns', 'del', ns]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('xdirector realserver --nat (namespaces)', () => {
  it('check on an unprepared server names where replies go and the fix, per family, and exits 1', () => {
    const r = xd(['check', '--nat', ...GW]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /MISSING IPv4 replies to clients beyond this network go via 10\.89\.2\.1 dev eth1, not via the director's inner address 10\.89\.1\.1.*\n\s+fix: ip -4 route replace default via 10\.89\.1\.1/,
    );
    assert.match(
      r.stdout,
      /MISSING IPv6 replies to clients beyond this network go via fd89:2::1 dev eth1, not via the director's inner address fd89:1::1.*\n\s+fix: ip -6 route replace default via fd89:1::1/,
    );
  });

  it('before setup a client beyond the director gets no answer: the replies leave by the other router', () => {
    assert.equal(connects('10.89.1.2'), false);
    assert.equal(connects('fd89:1::2'), false);
  });

  it('setup makes the director the default route of both families, records the old ones, and changes nothing else', () => {
    const lo = sh('ip', ['-n', R, '-j', 'addr', 'show', 'dev', 'lo']);
    const arp = sh('ip', [
      'netns',
      'exec',
      R,
      'sysctl',
      '-n',
      'net.ipv4.conf.all.arp_ignore',
      'net.ipv4.conf.all.arp_announce',
    ]);
    const r = xd(['setup', '--nat', ...GW]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /IPv4 default route via 10\.89\.1\.1 .*replacing via 10\.89\.2\.1 dev eth1/);
    assert.match(r.stdout, /IPv6 default route via fd89:1::1 .*replacing via fd89:2::1 dev eth1/);
    assert.match(r.stdout, /GRANT REPLICATION CLIENT/);
    assert.deepEqual(defaults(4), ['10.89.1.1']);
    assert.deepEqual(defaults(6), ['fd89:1::1']);
    assert.equal(sh('ip', ['-n', R, '-j', 'addr', 'show', 'dev', 'lo']), lo, 'no VIP on lo');
    assert.equal(
      sh('ip', ['netns', 'exec', R, 'sysctl', '-n', 'net.ipv4.conf.all.arp_ignore', 'net.ipv4.conf.all.arp_announce']),
      arp,
      'no ARP sysctl',
    );
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(stateFile, 'utf8'))).sort(), ['4', '6']);
  });

  it('after setup the client is answered over both families, and a second setup has nothing to do', () => {
    assert.equal(connects('10.89.1.2'), true);
    assert.equal(connects('fd89:1::2'), true);
    const r = xd(['setup', '--nat', ...GW]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^nothing to do: already set up/);
  });

  it('check passes on the prepared server', () => {
    const r = xd(['check', '--nat', ...GW]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok {6}IPv4 replies to clients go via 10\.89\.1\.1 \(dev eth0\)/);
    assert.match(r.stdout, /this server is ready for NAT/);
  });

  it('teardown puts the recorded default routes back and removes its state file', () => {
    const r = xd(['teardown', '--nat', ...GW]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /restored the IPv4 default route via 10\.89\.2\.1 dev eth1/);
    assert.deepEqual(defaults(4), ['10.89.2.1']);
    assert.deepEqual(defaults(6), ['fd89:2::1']);
    assert.equal(fs.existsSync(stateFile), false);
    assert.equal(connects('10.89.1.2'), false);
    assert.equal(xd(['check', '--nat', ...GW]).status, 1);
  });

  it("a gateway off this server's network is refused before anything changes", () => {
    const r = xd(['setup', '--nat', '--gateway', '10.89.1.1', '--gateway', 'fd89:3::1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /the gateway fd89:3::1 is not on this server's network \(reached via fd89:2::1\)/);
    assert.deepEqual(defaults(4), ['10.89.2.1'], 'the IPv4 default was not changed either');
  });

  it('mixing --nat with DR or tunnel options is refused naming the fix', () => {
    assert.match(xd(['setup', '--nat', '--vip', '10.89.0.100', ...GW]).stderr, /--nat needs no VIP on this server/);
    assert.match(xd(['setup', '--nat']).stderr, /needs --gateway ADDR: the director's inner address/);
    assert.match(xd(['setup', '--gateway', '10.89.1.1']).stderr, /add --nat/);
    assert.match(
      xd(['setup', '--nat', '--gateway', '10.89.1.1', '--gateway', '10.89.1.3']).stderr,
      /a second IPv4 gateway/,
    );
  });
});
