// The real-server tunnel recipe (src/realserver/tunnel.ts): which devices, GUE port and sysctls
// each combination of underlay and inner families needs, and, in a namespace made here, what
// setup and check say on a kernel without the tunnel drivers (this host's kernel has no ipip,
// sit, ip6_tunnel or fou: found by trying, the error must name the module).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { recipeCommands, sysctlWrites, tunnelRecipe } from '../../src/realserver/tunnel';
import { XdError } from '../../src/errors';

test('IPv4 underlay with IPv4 VIPs needs one collect_md ipip device and rp_filter off on it', () => {
  const r = tunnelRecipe({ underlay: [4], inner: [4], encap: 'ipip' });
  assert.deepEqual(
    r.devices.map((d) => [d.name, d.add?.join(' ')]),
    [['xdipip', 'type ipip external']],
  );
  assert.equal(r.fouPort, undefined);
  assert.deepEqual(
    r.sysctls.map((s) => `${s.key}=${s.value}`),
    ['net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.xdipip.rp_filter=0'],
  );
});

test('IPv6 VIPs over IPv4 use sit0, any VIP over IPv6 uses an ip6tnl device in mode any', () => {
  const r = tunnelRecipe({ underlay: [4, 6], inner: [4, 6], encap: 'ipip' });
  assert.deepEqual(
    r.devices.map((d) => [d.name, d.add?.join(' ') ?? `(${d.module})`]),
    [
      ['xdipip', 'type ipip external'],
      ['sit0', '(sit)'],
      ['xdip6tnl', 'type ip6tnl mode any external'],
    ],
  );
});

test('GUE adds the fou port (default 6080) and is refused over an IPv6 underlay', () => {
  assert.equal(tunnelRecipe({ underlay: [4], inner: [4], encap: 'gue' }).fouPort, 6080);
  assert.equal(tunnelRecipe({ underlay: [4], inner: [4], encap: 'gue', guePort: 5555 }).fouPort, 5555);
  assert.throws(
    () => tunnelRecipe({ underlay: [6], inner: [4], encap: 'gue' }),
    (e: unknown) => e instanceof XdError && /GUE runs over an IPv4 underlay only/.test(e.message),
  );
});

test('the recipe reads as the commands an operator would type', () => {
  assert.deepEqual(recipeCommands(tunnelRecipe({ underlay: [4], inner: [4, 6], encap: 'gue' })), [
    'ip link add xdipip type ipip external',
    'ip link set xdipip up',
    'modprobe sit   # creates sit0',
    'ip link set sit0 up',
    'ip fou add port 6080 gue',
    'sysctl -w net.ipv4.conf.all.rp_filter=0',
    'sysctl -w net.ipv4.conf.xdipip.rp_filter=0',
    'sysctl -w net.ipv4.conf.sit0.rp_filter=0',
  ]);
});

test("setup turns off only a strict rp_filter and leaves a loose one (systemd's default) in place", () => {
  const r = tunnelRecipe({ underlay: [4], inner: [4], encap: 'ipip' });
  const writes = (vals: Record<string, number>) => sysctlWrites(r, (k) => vals[k]!).map((s) => `${s.key}=${s.value}`);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 2, 'net.ipv4.conf.xdipip.rp_filter': 2 }), []);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 1, 'net.ipv4.conf.xdipip.rp_filter': 0 }), [
    'net.ipv4.conf.all.rp_filter=0',
  ]);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.xdipip.rp_filter': 1 }), [
    'net.ipv4.conf.xdipip.rp_filter=0',
  ]);
  assert.deepEqual(writes({ 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.xdipip.rp_filter': 0 }), []);
});

// ---- in a namespace

const NS = `xtrt${process.pid}`;
const MOD = path.resolve(__dirname, '../../src/realserver/tunnel.js');
function inNs(js: string): { ok: boolean; out: string } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      NS,
      process.execPath,
      '-e',
      `const t=require(${JSON.stringify(MOD)});(async()=>{${js}})().then((v)=>{process.stdout.write(JSON.stringify(v));},(e)=>{process.stdout.write(JSON.stringify({error:e.message,code:e.code}));process.exitCode=1;});`,
    ],
    { encoding: 'utf8' },
  );
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
  assert.deepEqual(
    found.filter((f) => !f.ok).map((f) => f.fix),
    [
      'ip link add xdipip type ipip external; ip link set xdipip up',
      'ip fou add port 6080 gue',
      "xdirector realserver setup --vip ... --tunnel --director ADDR (each director's tunnel source address)",
    ],
  );
});

test(
  'setup on a kernel without ipip fails naming the module, and leaves nothing half done',
  { skip: kernelHasIpip ? 'this kernel has ipip: the failure path cannot be provoked' : false },
  () => {
    const r = inNs('return t.setupTunnel({underlay:[4],inner:[4],encap:"ipip"});');
    assert.equal(r.ok, false);
    const e = JSON.parse(r.out) as { error: string; code: string };
    assert.equal(e.code, 'XD_ERR_REALSERVER');
    assert.match(e.error, /create xdipip .*this kernel has no ipip \(modprobe ipip\)/);
    assert.equal(spawnSync('ip', ['-n', NS, 'link', 'show', 'xdipip']).status, 1, 'no device left behind');
    const all = execFileSync('ip', ['netns', 'exec', NS, 'cat', '/proc/sys/net/ipv4/conf/all/rp_filter'], {
      encoding: 'utf8',
    }).trim();
    assert.ok(all === '0' || all === '1' || all === '2');
  },
);

// ------------------------------------------------------------- rp_filter: recorded, then put back
// In the test namespace (its own /proc/sys/net), with the record in a per-run temp directory.
const STATE_DIR = fs.mkdtempSync(path.join(os.tmpdir(), `xtrs${process.pid}-`));
after(() => fs.rmSync(STATE_DIR, { recursive: true, force: true }));
const sysctl = (key: string): string =>
  execFileSync('ip', ['netns', 'exec', NS, 'cat', `/proc/sys/${key.replace(/\./g, '/')}`], { encoding: 'utf8' }).trim();
const setSysctl = (key: string, v: number): void => {
  execFileSync('ip', ['netns', 'exec', NS, 'sh', '-c', `echo ${v} > /proc/sys/${key.replace(/\./g, '/')}`]);
};
const ALL = 'net.ipv4.conf.all.rp_filter';
const LO = 'net.ipv4.conf.lo.rp_filter';
const LIST = JSON.stringify([
  { key: ALL, value: 0, why: 'test' },
  { key: LO, value: 0, why: 'test' },
]);

test('setup records the strict rp_filter it lowers and teardown puts it back; a loose one is left alone', () => {
  const file = path.join(STATE_DIR, 'a.json');
  setSysctl(ALL, 1);
  setSysctl(LO, 2);
  let r = inNs(`return t.lowerSysctls(${LIST}, ${JSON.stringify(file)});`);
  assert.ok(r.ok, r.out);
  assert.deepEqual(JSON.parse(r.out), [`set ${ALL}=0 (test; was 1, teardown puts it back)`]);
  assert.deepEqual([sysctl(ALL), sysctl(LO)], ['0', '2']);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { [ALL]: { was: 1, set: 0 } });
  // A second setup has nothing to do and keeps the value from before xdirector.
  r = inNs(`return t.lowerSysctls(${LIST}, ${JSON.stringify(file)});`);
  assert.deepEqual(JSON.parse(r.out), []);
  r = inNs(`return t.restoreSysctls(${JSON.stringify(file)});`);
  assert.ok(r.ok, r.out);
  assert.deepEqual(JSON.parse(r.out), [`restored ${ALL}=1`]);
  assert.deepEqual([sysctl(ALL), sysctl(LO)], ['1', '2']);
  assert.equal(fs.existsSync(file), false, 'the record is gone');
});

test('teardown leaves a sysctl someone changed after setup, and refuses a record it cannot trust', () => {
  const file = path.join(STATE_DIR, 'b.json');
  setSysctl(ALL, 1);
  assert.ok(inNs(`return t.lowerSysctls(${LIST}, ${JSON.stringify(file)});`).ok);
  setSysctl(ALL, 2);
  const r = inNs(`return t.restoreSysctls(${JSON.stringify(file)});`);
  assert.deepEqual(JSON.parse(r.out), [`left ${ALL}=2 (changed since setup set it to 0)`]);
  assert.equal(sysctl(ALL), '2');
  fs.writeFileSync(file, '{"net.ipv4.conf.all.rp_filter": "one"}');
  const bad = inNs(`return t.restoreSysctls(${JSON.stringify(file)});`);
  assert.equal(bad.ok, false);
  const e = JSON.parse(bad.out) as { error: string; code: string };
  assert.equal(e.code, 'XD_ERR_STATE_FILE');
  assert.ok(e.error.includes(file) && /fix: look at it/.test(e.error), e.error);
  assert.equal(sysctl(ALL), '2', 'nothing changed');
  assert.ok(fs.existsSync(file), 'the file is kept');
});
