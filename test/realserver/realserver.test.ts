// xdirector realserver in namespaces: a real server R and a neighbour C on one veth link.
// setup puts the VIPs on lo and stops R answering ARP for them (the neighbour's ARP for the VIP
// stays unresolved, while it resolved before setup); a frame sent to R's MAC for the VIP is
// accepted (the director's DR path); check reports what is missing; teardown restores.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/xdirector.js');
const P = `xtrs${process.pid % 100000}`;
const R = `${P}r`;
const C = `${P}c`;
const VIP4 = '10.88.0.100';
const VIP6 = 'fd88::100';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
const sysctlFile = path.join(tmp, 'sysctl.d', '90-xdirector-realserver.conf');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const inR = (args: string[]) => sh('ip', ['netns', 'exec', R, ...args]);
function xd(args: string[]) {
  return spawnSync(
    'ip',
    ['netns', 'exec', R, process.execPath, BIN, 'realserver', ...args, '--sysctl-file', sysctlFile],
    { encoding: 'utf8' },
  );
}

/** Does C resolve `vip` to R's MAC by ARP? (C sends one UDP datagram to trigger the request.) */
async function cResolves(vip: string): Promise<boolean> {
  sh('ip', ['-n', C, 'neigh', 'flush', 'dev', 'eth0']);
  sh('ip', [
    'netns',
    'exec',
    C,
    process.execPath,
    '-e',
    `const s=require('dgram').createSocket('udp4');s.send('x',9,'${vip}',()=>s.close())`,
  ]);
  for (let i = 0; i < 15; i++) {
    const n = JSON.parse(sh('ip', ['-n', C, '-j', 'neigh', 'show', vip, 'dev', 'eth0'])) as {
      lladdr?: string;
      state?: string[];
    }[];
    if (n[0]?.lladdr) return true;
    await sleep(100);
  }
  return false;
}

before(() => {
  sh('ip', ['netns', 'add', R]);
  sh('ip', ['netns', 'add', C]);
  sh('ip', ['-n', R, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C]);
  for (const [ns, a] of [
    [R, '10.88.0.2'],
    [C, '10.88.0.1'],
  ] as const) {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }
  // C reaches the VIP on the link, as a director's neighbour lookup would.
  sh('ip', ['-n', C, 'route', 'add', `${VIP4}/32`, 'dev', 'eth0']);
});

after(() => {
  for (const ns of [R, C]) spawnSync('ip', ['netns', 'del', ns]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('xdirector realserver (namespaces)', () => {
  it('check on an unprepared server reports every missing piece with its fix and exits 1', () => {
    const r = xd(['check', '--vip', VIP4, '--vip', VIP6]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /MISSING 10\.88\.0\.100 is not on lo.*\n\s+fix: ip addr add 10\.88\.0\.100\/32 dev lo/);
    assert.match(
      r.stdout,
      /MISSING fd88::100 is not on lo.*\n\s+fix: ip addr add fd88::100\/128 dev lo nodad preferred_lft 0/,
    );
    assert.match(r.stdout, /MISSING net\.ipv4\.conf\.all\.arp_ignore is 0/);
    assert.match(r.stdout, /MISSING net\.ipv4\.conf\.all\.arp_announce=2 is not persisted/);
  });

  it('without the ARP sysctls, a VIP on lo is answered for by ARP (the failure setup prevents)', async () => {
    inR(['ip', 'addr', 'add', `${VIP4}/32`, 'dev', 'lo']);
    try {
      assert.equal(await cResolves(VIP4), true);
    } finally {
      inR(['ip', 'addr', 'del', `${VIP4}/32`, 'dev', 'lo']);
    }
  });

  it('setup adds the VIPs to lo (IPv6 nodad and deprecated), sets and persists the sysctls, and prints both GRANTs', () => {
    const r = xd(['setup', '--vip', VIP4, '--vip', VIP6]);
    assert.equal(r.status, 0, r.stderr);
    const lo = JSON.parse(inR(['ip', '-j', 'addr', 'show', 'dev', 'lo']))[0].addr_info as any[];
    assert.ok(lo.some((a) => a.local === VIP4 && a.prefixlen === 32));
    const v6 = lo.find((a) => a.local === VIP6);
    assert.deepEqual([v6?.prefixlen, v6?.nodad, v6?.deprecated], [128, true, true]);
    assert.equal(inR(['cat', '/proc/sys/net/ipv4/conf/all/arp_ignore']).trim(), '1');
    assert.equal(inR(['cat', '/proc/sys/net/ipv4/conf/all/arp_announce']).trim(), '2');
    const file = fs.readFileSync(sysctlFile, 'utf8');
    assert.match(file, /^net\.ipv4\.conf\.all\.arp_ignore = 1$/m);
    assert.match(file, /^net\.ipv4\.conf\.all\.arp_announce = 2$/m);
    // The file is what systemd-sysctl reads at boot: sysctl -p accepts it.
    assert.match(inR(['sysctl', '-p', sysctlFile]), /arp_announce = 2/);
    assert.match(r.stdout, /-- MySQL 8[\s\S]*GRANT REPLICATION CLIENT, PROCESS ON \*\.\* TO 'monitor'@'%';/);
    assert.match(
      r.stdout,
      /-- MariaDB[\s\S]*GRANT REPLICATION CLIENT, PROCESS, SLAVE MONITOR ON \*\.\* TO 'monitor'@'%';/,
    );
    assert.equal(xd(['setup', '--vip', VIP4, '--vip', VIP6]).stdout.split('\n')[0], 'nothing to do: already set up');
  });

  it('after setup the neighbour cannot resolve the VIP by ARP, yet R accepts packets sent to its MAC for the VIP', async () => {
    assert.equal(await cResolves(VIP4), false, 'R answered ARP for the VIP');
    const mac = JSON.parse(inR(['ip', '-j', 'link', 'show', 'eth0']))[0].address as string;
    sh('ip', ['-n', C, 'neigh', 'replace', VIP4, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    try {
      const port = 40000 + (process.pid % 20000);
      const srv = `const s=require('net').createServer(c=>{c.end('hi');s.close()}).listen(${port},'${VIP4}',()=>console.log('up'))`;
      const { spawn } = await import('node:child_process');
      const p = spawn('ip', ['netns', 'exec', R, process.execPath, '-e', srv], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise((res) => p.stdout!.once('data', res));
      const got = sh('ip', [
        'netns',
        'exec',
        C,
        process.execPath,
        '-e',
        `require('net').connect(${port},'${VIP4}').on('data',d=>{process.stdout.write(d)})`,
      ]);
      assert.equal(got, 'hi');
      await new Promise((res) => p.once('exit', res));
    } finally {
      sh('ip', ['-n', C, 'neigh', 'del', VIP4, 'dev', 'eth0']);
    }
  });

  it('check on a prepared server exits 0, and reports a VIP an operator removed', () => {
    const ok = xd(['check', '--vip', VIP4, '--vip', VIP6]);
    assert.equal(ok.status, 0, ok.stdout);
    assert.match(ok.stdout, /this server is ready for DR/);
    inR(['ip', 'addr', 'del', `${VIP6}/128`, 'dev', 'lo']);
    const bad = xd(['check', '--vip', VIP4, '--vip', VIP6]);
    assert.equal(bad.status, 1);
    assert.deepEqual(
      bad.stdout.split('\n').filter((l) => l.startsWith('MISSING')),
      ['MISSING fd88::100 is not on lo: packets for the VIP would be dropped'],
    );
  });

  it('teardown removes the VIPs and the file and restores the previous sysctl values', () => {
    const r = xd(['teardown', '--vip', VIP4, '--vip', VIP6]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!inR(['ip', 'addr', 'show', 'dev', 'lo']).includes(VIP4));
    assert.equal(inR(['cat', '/proc/sys/net/ipv4/conf/all/arp_ignore']).trim(), '0');
    assert.equal(inR(['cat', '/proc/sys/net/ipv4/conf/all/arp_announce']).trim(), '0');
    assert.equal(fs.existsSync(sysctlFile), false);
  });

  it('--tunnel adds the decapsulating device to check and setup; a kernel without ipip fails first, changing nothing', () => {
    const c = xd(['check', '--vip', VIP4, '--tunnel']);
    assert.equal(c.status, 1);
    assert.match(
      c.stdout,
      /MISSING xdipip is missing.*\n\s+fix: ip link add xdipip type ipip external; ip link set xdipip up/,
    );
    const hasIpip = spawnSync('ip', ['-n', C, 'link', 'add', 'xdprobe', 'type', 'ipip', 'external']).status === 0;
    spawnSync('ip', ['-n', C, 'link', 'del', 'xdprobe']);
    const r = xd(['setup', '--vip', VIP4, '--tunnel']);
    if (hasIpip) {
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /xdipip/);
      assert.equal(xd(['teardown', '--vip', VIP4, '--tunnel']).status, 0);
    } else {
      assert.equal(r.status, 1);
      assert.match(r.stderr, /this kernel has no ipip \(modprobe ipip\)/);
      assert.ok(!inR(['ip', 'addr', 'show', 'dev', 'lo']).includes(VIP4), 'the VIP was not added');
      assert.equal(fs.existsSync(sysctlFile), false, 'no sysctl file written');
    }
  });

  it('refuses a VIP with a network prefix, exit 2, naming the fix', () => {
    const r = xd(['setup', '--vip', '10.88.0.100/24']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /a VIP on lo is a host address: write it without a prefix or with \/32/);
  });
});
