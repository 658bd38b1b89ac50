// The real-server tunnel recipe (src/realserver/tunnel.ts): which devices, GUE port and sysctls
// each combination of underlay and inner families needs, and, in a namespace made here, what
// setup and check say on a kernel without the tunnel drivers (this host's kernel has no ipip,
// sit, ip6_tunnel or fou: found by trying, the error must name the module).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { recipeCommands, sysctlWrites, tunnelRecipe } from '../../src/realserver/tunnel';
import { XdError } from '../../src/errors';

test('IPv4 underlay with IPv4 VIPs needs one collect_md ipip device and rp_filter off on it', () => {
  const r = tunnelRecipe({ underlay: [4], inner: [4], encap: 'ipip' });
  assert.deepEqual(r.devices.map((d) => [d.name, d.add?.join(' ')]), [['xdipip', 'type ipip external']]);
  assert.equal(r.fouPort, undefined);
  assert.deepEqual(r.sysctls.map((s) => `${s.key}=${s.value}`), ['net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.xdipip.rp_filter=0']);
});

test('IPv6 VIPs over IPv4 use sit0, any VIP over IPv6 uses an ip6tnl device in mode any', () => {
  const r = tunnelRecipe({ underlay: [4, 6], inner: [4, 6], encap: 'ipip' });
  assert.deepEqual(r.devices.map((d) => [d.name, d.add?.join(' ') ?? `(${d.module})`]), [
    ['xdipip', 'type ipip external'], ['sit0', '(sit)'], ['xdip6tnl', 'type ip6tnl mode any external'],
  ]);
});

test('GUE adds the fou port (default 6080) and is refused over an IPv6 underlay', () => {
  assert.equal(tunnelRecipe({ underlay: [4], inner: [4], encap: 'gue' }).fouPort, 6080);
  assert.equal(tunnelRecipe({ underlay: [4], inner: [4], encap: 'gue', guePort: 5555 }).fouPort, 5555);
  assert.throws(() => tunnelRecipe({ underlay: [6], inner: [4], encap: 'gue' }), (e: unknown) => e instanceof XdError && /GUE runs over an IPv4 underlay only/.test(e.message));
});

test('the recipe reads as the commands an operator would type', () => {
  assert.deepEqual(recipeCommands(tunnelRecipe({ underlay: [4], inner: [4, 6], encap: 'gue' })), [
    'ip link add xdipip type ipip external', 'ip link set xdipip up',
    'modprobe sit   # creates sit0', 'ip link set sit0 up',
    'ip fou add port 6080 gue',
    'sysctl -w net.ipv4.conf.all.rp_filter=0', 'sysctl -w net.ipv4.conf.xdipip.rp_filter=0', 'sysctl -w net.ipv4.conf.sit0.rp_filter=0',
  ]);
});

test('setup turns off only a strict rp_filter and leaves a loose one (systemd\'s default) in place', () => {
  const r = tunnelRecipe({ underlay: [4], inner: [4], encap: 'ipip' });
  const writes = (vals: Record<string, number>) => sysctlWrites(r, (k) => vals[k]!).map((s) => `${s.key}=${s.value}`);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 2, 'net.ipv4.conf.xdipip.rp_filter': 2 }), []);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 1, 'net.ipv4.conf.xdipip.rp_filter': 0 }), ['net.ipv4.conf.all.rp_filter=0']);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.xdipip.rp_filter': 1 }), ['net.ipv4.conf.xdipip.rp_filter=0']);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.xdipip.rp_filter': 0 }), []);
});

// ---- in a namespace

const NS = `xtrt${process.pid}`;
const MOD = path.resolve(__dirname, '../../src/realserver/tunnel.js');
function inNs(js: string): { ok: boolean; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', `const t=require(${JSON.stringify(MOD)});(async()=>{${js}})().then((v)=>{process.stdout.write(JSON.stringify(v));},(e)=>{process.stdout.write(JSON.stringify({error:e.message,code:e.code}));process.exitCode=1;});`], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout };
}
const kernelHasIpip = (() => {
  const ns = `xtrp${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns]);
    return spawnSync('ip', ['-n', ns, 'link', 'add', 'x', 'type', 'ipip', 'external']).status === 0;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
})();

before(() => execFileSync('ip', ['netns', 'add', NS]));
after(() => spawnSync('ip', ['netns', 'del', NS]));

test('check reports the missing device with the command that creates it', () => {
  const r = inNs('return t.checkTunnel({underlay:[4],inner:[4],encap:"gue"});');
  assert.ok(r.ok, r.out);
  const found = JSON.parse(r.out) as { ok: boolean; what: string; fix?: string }[];
  assert.deepEqual(found.filter((f) => !f.ok).map((f) => f.fix), ['ip link add xdipip type ipip external; ip link set xdipip up', 'ip fou add port 6080 gue']);
});

test('setup on a kernel without ipip fails naming the module, and leaves nothing half done', { skip: kernelHasIpip ? 'this kernel has ipip: the failure path cannot be provoked' : false }, () => {
  const r = inNs('return t.setupTunnel({underlay:[4],inner:[4],encap:"ipip"});');
  assert.equal(r.ok, false);
  const e = JSON.parse(r.out) as { error: string; code: string };
  assert.equal(e.code, 'XD_ERR_REALSERVER');
  assert.match(e.error, /create xdipip .*this kernel has no ipip \(modprobe ipip\)/);
  assert.equal(spawnSync('ip', ['-n', NS, 'link', 'show', 'xdipip']).status, 1, 'no device left behind');
  const all = execFileSync('ip', ['netns', 'exec', NS, 'cat', '/proc/sys/net/ipv4/conf/all/rp_filter'], { encoding: 'utf8' }).trim();
  assert.ok(all === '0' || all === '1' || all === '2');
});
