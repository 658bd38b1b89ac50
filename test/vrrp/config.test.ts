// The `vrrp:` config section: defaults, normalisation and the errors an operator sees.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveVrrpInterfaces, vrrpSchema } from '../../src/config/vrrp';

const base = { name: 'vi1', vrid: 51, vips: ['10.0.0.10/24'] };

function issues(input: unknown): string[] {
  const r = vrrpSchema.safeParse(input);
  assert.equal(r.success, false, 'expected the config to be rejected');
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('vrrp config', () => {
  it('fills in keepalived-like defaults and normalises durations and VIPs', () => {
    const [i] = vrrpSchema.parse([base]);
    assert.equal(i!.version, 2);
    assert.equal(i!.priority, 100);
    assert.equal(i!.advert_interval, 1000);
    assert.equal(i!.preempt, true);
    assert.equal(i!.preempt_delay, 0);
    assert.deepEqual(i!.vips, [{ address: '10.0.0.10', prefix: 24, family: 4 }]);
    assert.deepEqual(i!.garp, { repeat: 5, interval: 100, refresh: 60_000 });
  });

  it('takes a VIP on another interface as keepalived writes it ("addr/prefix dev IFACE"); dev naming the instance interface is the plain form', () => {
    const [i] = resolveVrrpInterfaces(
      vrrpSchema.parse([{ ...base, vips: ['10.0.0.10/24', '10.0.1.1/24 dev eth1', '10.0.0.11 dev eth0'] }]),
      'eth0',
    );
    assert.deepEqual(i!.vips, [
      { address: '10.0.0.10', prefix: 24, family: 4 },
      { address: '10.0.1.1', prefix: 24, family: 4, dev: 'eth1' },
      { address: '10.0.0.11', prefix: 32, family: 4 },
    ]);
    assert.match(
      issues([{ ...base, vips: ['10.0.1.1/24 label eth1:0'] }]).join('\n'),
      /0\.vips\.0: "10\.0\.1\.1\/24 label eth1:0" is not a VIP: write "addr", "addr\/prefix" or "addr\/prefix dev IFACE"/,
    );
  });

  it('refuses a sync group with one instance, naming the fix', () => {
    assert.match(
      issues([
        { ...base, sync_group: 'VG1' },
        { ...base, name: 'vi2', vrid: 52 },
      ]).join('\n'),
      /0\.sync_group: sync group "VG1" has only this instance: .*name it on another instance too, or remove sync_group/,
    );
    assert.equal(
      vrrpSchema.parse([
        { ...base, sync_group: 'VG1' },
        { ...base, name: 'vi2', vrid: 52, sync_group: 'VG1' },
      ])[1]!.sync_group,
      'VG1',
    );
  });

  it('defaults IPv6 instances to version 3 and full-length prefixes', () => {
    const [i] = vrrpSchema.parse([{ ...base, vips: ['fd00::10'], advert_interval: '100ms' }]);
    assert.equal(i!.version, 3);
    assert.equal(i!.family, 6);
    assert.equal(i!.vips[0]!.prefix, 128);
    assert.equal(i!.advert_interval, 100);
  });

  it('refuses a bare number as advert_interval, naming both readings', () => {
    assert.match(
      issues([{ ...base, advert_interval: 1 }]).join('\n'),
      /0\.advert_interval: is a bare number \(1\): durations need their unit, write 1s or 1ms/,
    );
  });

  it('rejects sub-second adverts for VRRPv2, naming the fix', () => {
    assert.match(
      issues([{ ...base, advert_interval: '100ms' }]).join('\n'),
      /0\.advert_interval: VRRPv2 adverts are whole seconds .*version 3/,
    );
  });

  it('rejects VRRPv3 intervals that are not whole centiseconds', () => {
    assert.match(issues([{ ...base, version: 3, advert_interval: '105ms' }]).join('\n'), /centiseconds/);
  });

  it('rejects authentication with VRRPv3 and passwords longer than 8 characters', () => {
    assert.match(
      issues([{ ...base, version: 3, auth: { type: 'pass', password: 'x' } }]).join('\n'),
      /0\.auth: VRRPv3 has no authentication/,
    );
    assert.match(issues([{ ...base, auth: { type: 'pass', password: '123456789' } }]).join('\n'), /at most 8/);
  });

  it('rejects an owner (priority 255) without preemption', () => {
    assert.match(issues([{ ...base, priority: 255, preempt: false }]).join('\n'), /0\.preempt: the address owner/);
  });

  it('rejects unknown keys, bad VRIDs and malformed VIPs with their paths', () => {
    const all = issues([{ ...base, vrid: 0, vips: ['10.0.0.300/24'], bogus: 1 }]).join('\n');
    assert.match(all, /0\.vrid/);
    assert.match(all, /0\.vips\.0: "10\.0\.0\.300\/24" is not a VIP/);
    assert.match(all, /bogus/);
  });

  it('rejects mixing IPv4 and IPv6 VIPs and peers of the other family', () => {
    assert.match(issues([{ ...base, vips: ['10.0.0.10', 'fd00::1'], version: 3 }]).join('\n'), /one address family/);
    assert.match(
      issues([{ ...base, unicast_peers: ['fd00::2'] }]).join('\n'),
      /0\.unicast_peers\.0: unicast peer must be an IPv4 address/,
    );
  });

  it('rejects duplicate instance names and a VRID reused on one interface', () => {
    const all = issues([base, { ...base }]).join('\n');
    assert.match(all, /1\.name: instance name "vi1" is used twice/);
    assert.match(all, /1\.vrid: VRID 51 is already used/);
  });

  it('takes the top-level interface when an instance names none', () => {
    const list = vrrpSchema.parse([base, { ...base, name: 'vi2', vrid: 52, interface: 'eth1' }]);
    assert.deepEqual(
      resolveVrrpInterfaces(list, 'eth0').map((i) => i.interface),
      ['eth0', 'eth1'],
    );
    assert.throws(() => resolveVrrpInterfaces(list, undefined), /vrrp instance vi1: no interface/);
  });

  it('accepts a full tracking section with defaults for weights, rise and fall', () => {
    const [i] = vrrpSchema.parse([
      {
        ...base,
        track: {
          xdp: {},
          pools: [{ service: 'rw', weight: -50 }],
          scripts: [{ command: 'true' }],
          interfaces: [{ name: 'eth1' }],
        },
      },
    ]);
    assert.deepEqual(i!.track.xdp, { weight: 0 });
    assert.deepEqual(i!.track.scripts[0], { command: 'true', interval: 1000, weight: 0, rise: 1, fall: 1 });
    assert.deepEqual(i!.track.interfaces[0], { name: 'eth1', weight: 0 });
  });
});
