// The sysctls a NAT director needs (src/dataplane/nat-sysctls.ts): which ones for which desired
// state, and setting them all or none. The kernel's own effect (forwarding on, replies
// translated) is shown in the VM scenario (test/vm/daemon.test.ts, phase A).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DesiredBackend, DesiredService, DesiredState, Family, Forwarding } from '../../src/state/types';
import { ensureSysctls, natSysctls, sysctlFile } from '../../src/dataplane/nat-sysctls';

function state(...svcs: Array<[Family, Forwarding]>): DesiredState {
  return {
    services: svcs.map(([family, forwarding], i): DesiredService => {
      const address = family === 4 ? '10.78.0.11' : 'fd00:78::11';
      const b: DesiredBackend = {
        key: `${address}:3306`,
        name: `b${i}`,
        address,
        port: 3306,
        family,
        weight: 1,
        state: 'active',
        forwarding,
      };
      return {
        name: `s${i}`,
        vip: family === 4 ? '10.77.0.100' : 'fd00:77::100',
        port: 3307 + i,
        proto: 'tcp',
        family,
        scheduler: 'maglev',
        ring: { kind: 'maglev', size: 65537 },
        onEmpty: 'pass',
        backends: [b],
      };
    }),
  };
}
const keys = (s: DesiredState, inner?: string) =>
  natSysctls(s, { outer: 'eth0', inner }).map((w) => `${w.key}=${w.value}`);

test('no NAT service needs no sysctl', () => {
  assert.deepEqual(keys(state([4, 'dr'], [6, 'tunnel'])), []);
});

test('one-armed IPv4 NAT needs forwarding and no ICMP redirects from all and the interface (the kernel ORs them)', () => {
  assert.deepEqual(keys(state([4, 'nat'])), [
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.send_redirects=0',
    'net.ipv4.conf.eth0.send_redirects=0',
  ]);
  assert.deepEqual(keys(state([4, 'nat']), 'eth0'), [
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.send_redirects=0',
    'net.ipv4.conf.eth0.send_redirects=0',
  ]);
});

test('two-armed NAT needs forwarding only; IPv6 NAT needs IPv6 forwarding', () => {
  assert.deepEqual(keys(state([4, 'nat']), 'eth1'), ['net.ipv4.ip_forward=1']);
  assert.deepEqual(keys(state([6, 'nat'], [4, 'dr']), 'eth1'), ['net.ipv6.conf.all.forwarding=1']);
});

function procSys(values: Record<string, string>): string {
  const dir = mkdtempSync(`/tmp/xdg-natsys-${process.pid}-`);
  for (const [k, v] of Object.entries(values)) {
    mkdirSync(dirname(sysctlFile(k, dir)), { recursive: true });
    writeFileSync(sysctlFile(k, dir), `${v}\n`);
  }
  return dir;
}

test('ensureSysctls writes only what differs and reports the value it found', async () => {
  const dir = procSys({
    'net.ipv4.ip_forward': '0',
    'net.ipv4.conf.all.send_redirects': '0',
    'net.ipv4.conf.eth0.send_redirects': '1',
  });
  try {
    const changed = await ensureSysctls(natSysctls(state([4, 'nat']), { outer: 'eth0' }), dir);
    assert.deepEqual(
      changed.map((c) => `${c.key}: ${c.was} -> ${c.value}`),
      ['net.ipv4.ip_forward: 0 -> 1', 'net.ipv4.conf.eth0.send_redirects: 1 -> 0'],
    );
    assert.equal(readFileSync(sysctlFile('net.ipv4.ip_forward', dir), 'utf8'), '1\n');
    assert.deepEqual(await ensureSysctls(natSysctls(state([4, 'nat']), { outer: 'eth0' }), dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sysctl that cannot be read changes nothing; one that cannot be written puts the earlier ones back', async () => {
  const dir = procSys({ 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.all.send_redirects': '1' });
  try {
    const want = natSysctls(state([4, 'nat']), { outer: 'eth0' });
    await assert.rejects(ensureSysctls(want, dir), {
      code: 'XD_ERR_SYSCTL',
      message: /^NAT needs net\.ipv4\.conf\.eth0\.send_redirects=0 .* cannot be read: ENOENT/,
    });
    assert.equal(readFileSync(sysctlFile('net.ipv4.ip_forward', dir), 'utf8'), '0\n');
    // Readable but not writable, even for root: /proc/sys/kernel/version is mode 0444 (proc_sys_permission checks the mode for root too).
    mkdirSync(dirname(sysctlFile('net.ipv4.conf.eth0.send_redirects', dir)), { recursive: true });
    symlinkSync('/proc/sys/kernel/version', sysctlFile('net.ipv4.conf.eth0.send_redirects', dir));
    await assert.rejects(ensureSysctls(want, dir), {
      code: 'XD_ERR_SYSCTL',
      message: /^NAT needs net\.ipv4\.conf\.eth0\.send_redirects=0 .*: writing .* failed: EACCES/,
    });
    assert.equal(readFileSync(sysctlFile('net.ipv4.ip_forward', dir), 'utf8'), '0\n', 'ip_forward put back');
    assert.equal(
      readFileSync(sysctlFile('net.ipv4.conf.all.send_redirects', dir), 'utf8'),
      '1\n',
      'all.send_redirects put back',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
