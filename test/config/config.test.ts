// Config: every rule's message names the file, the key path and the problem (with the line);
// defaults; unknown keys with suggestions; all problems collected.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig, loadConfig, backendKey } from '../../src/config';
import { XdError } from '../../src/errors';
import { configProblems as problems } from '../lib/config';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), `xdc-config-${process.pid}-`));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

const MINIMAL = `instance: lab
interface: eth0
monitor:
  user: monitor
  password_env: PW
services:
  - name: mysql
    vip: 10.77.0.100
    port: 3306
    backends:
      - address: 10.77.0.11
      - address: 10.77.0.12
`;

/** A single service config text with the given backends block and service extras. */
function service(extra: string, backends = '      - address: 10.77.0.11\n'): string {
  return `instance: lab\ninterface: eth0\nservices:\n  - name: s\n    vip: 10.77.0.100\n    port: 80\n${extra}    backends:\n${backends}`;
}

const FULL = `# a full config
instance: prod-1
interface: ens3
dataplane: auto
xdp:
  mode: generic
  ring_size: 655373
  ipvs_mh_size: 8191
  flow_table_size: 2097152
  max_services: 16
  max_backends: 1024
  pin_dir: /sys/fs/bpf/xd/
admin:
  socket: /run/xd/prod.sock
log:
  level: debug
monitor:
  user: monitor
  password_file: /etc/xdirector/monitor.pw
  connect_timeout: 2s
health:
  interval: 1s
  timeout: 500ms
  rise: 3
  fall: 2
  max_replication_lag: 2m
vrrp:
  - name: vi1
    vrid: 51
    priority: 150
    advert_interval: 1s
    vips: [10.0.0.100/24, 10.0.0.101/24]
services:
  - name: mysql-rw
    vip: 10.0.0.100
    port: 3306
    protocol: tcp
    scheduler: maglev
    ring: ipvs-mh
    on_empty: drop
    check: mysql
    pool: writer
    backends:
      - { address: 10.0.0.11, name: db1, mac: "02:00:00:00:00:11" }
      - { address: 10.0.0.12, name: db2, mac: "02-00-00-00-00-12", weight: 3 }
  - name: mysql-ro
    vip: 10.0.0.101
    port: 3306
    scheduler: lc
    pool: readers
    readers_include_writer: true
    backends:
      - { address: 10.0.0.11 }
      - { address: 10.0.0.12, port: 3306 }
      - { address: 10.0.0.13, name: db3 }
  - name: mysql6
    vip: "FD00:0::100"
    port: 3306
    protocol: udp
    scheduler: sh
    check: tcp
    backends:
      - { address: "fd00::11" }
`;

test('a valid full config gives the typed Config with every value', () => {
  const c = parseConfig(FULL, 'prod.yaml');
  assert.equal(c.instance, 'prod-1');
  assert.equal(c.interface, 'ens3');
  assert.equal(c.dataplane, 'auto');
  assert.deepEqual(c.xdp, {
    mode: 'generic',
    ringSize: 655373,
    ipvsMhSize: 8191,
    flowTableSize: 2097152,
    embryonicTableSize: 65536,
    takeoverTableSize: 262144,
    newFlowRate: 10000,
    synReuseIdleMs: 2000,
    tooBigRate: 1000,
    maxServices: 16,
    maxBackends: 1024,
    pinDir: '/sys/fs/bpf/xd',
  });
  assert.equal(c.admin.socket, '/run/xd/prod.sock');
  assert.equal(c.log.level, 'debug');
  assert.equal(c.monitor?.user, 'monitor');
  assert.equal(c.monitor?.connect_timeout, 2000);
  assert.equal(c.health.interval, 1000);
  assert.equal(c.health.max_replication_lag, 120000);
  assert.equal(c.vrrp.length, 1);
  assert.equal(c.vrrp[0]!.interface, 'ens3', 'VRRP interface defaults to the top-level one');
  assert.equal(c.source, 'prod.yaml');
  const [rw, ro, v6] = c.services;
  assert.deepEqual(
    { ...rw!, backends: undefined },
    {
      name: 'mysql-rw',
      vip: '10.0.0.100',
      family: 4,
      port: 3306,
      protocol: 'tcp',
      scheduler: 'maglev',
      ring: 'ipvs-mh',
      ringSize: 8191,
      onEmpty: 'drop',
      check: 'mysql',
      pool: 'writer',
      readersIncludeWriter: false,
      forwarding: 'dr',
      encap: 'ipip',
      guePort: 6080,
      backends: undefined,
    },
  );
  assert.deepEqual(rw!.backends[1], {
    key: '10.0.0.12:3306',
    name: 'db2',
    address: '10.0.0.12',
    family: 4,
    port: 3306,
    weight: 3,
    mac: '02:00:00:00:00:12',
    forwarding: 'dr',
  });
  assert.equal(ro!.ring, 'maglev', 'lc uses the Maglev ring');
  assert.equal(ro!.ringSize, 655373);
  assert.equal(ro!.check, 'mysql', 'port 3306: mysql check by default');
  assert.equal(ro!.readersIncludeWriter, true);
  assert.deepEqual(
    ro!.backends.map((b) => b.name),
    ['db1', 'db2', 'db3'],
    'a real server named in one service has that name everywhere',
  );
  assert.equal(v6!.vip, 'fd00::100', 'addresses in canonical form');
  assert.equal(v6!.family, 6);
  assert.equal(v6!.protocol, 'udp');
  assert.equal(v6!.ring, 'ipvs-mh');
  assert.equal(v6!.backends[0]!.key, '[fd00::11]:3306');
});

test('defaults are applied to a minimal config', () => {
  const c = parseConfig(MINIMAL, 'lab.yaml');
  assert.equal(c.dataplane, 'auto');
  assert.deepEqual(c.xdp, {
    mode: 'native',
    ringSize: 65537,
    ipvsMhSize: 4093,
    flowTableSize: 1048576,
    embryonicTableSize: 65536,
    takeoverTableSize: 262144,
    newFlowRate: 10000,
    synReuseIdleMs: 2000,
    tooBigRate: 1000,
    maxServices: 64,
    maxBackends: 4096,
    pinDir: '/sys/fs/bpf/xdirector',
  });
  assert.equal(c.admin.socket, '/run/xdirector/lab.sock');
  assert.equal(c.log.level, 'info');
  assert.equal(c.health.interval, 1000);
  assert.equal(c.health.rise, 2);
  assert.deepEqual(c.vrrp, []);
  const s = c.services[0]!;
  assert.equal(s.protocol, 'tcp');
  assert.equal(s.scheduler, 'maglev');
  assert.equal(s.ring, 'ipvs-mh', 'dataplane auto may fall back to IPVS: the IPVS-compatible ring');
  assert.equal(s.ringSize, 4093);
  assert.equal(s.onEmpty, 'pass');
  assert.equal(s.check, 'mysql', 'port 3306: mysql check');
  assert.equal(s.pool, 'static');
  assert.equal(s.readersIncludeWriter, false);
  assert.deepEqual(s.backends[0], {
    key: '10.77.0.11:3306',
    name: '10.77.0.11:3306',
    address: '10.77.0.11',
    family: 4,
    port: 3306,
    weight: 1,
    forwarding: 'dr',
  });
});

test('with dataplane xdp the default ring is Maglev at xdp.ring_size', () => {
  const c = parseConfig(MINIMAL.replace('interface: eth0\n', 'interface: eth0\ndataplane: xdp\n'), 'lab.yaml');
  assert.equal(c.services[0]!.ring, 'maglev');
  assert.equal(c.services[0]!.ringSize, 65537);
});

test('the lab config in scripts/config/lab.yaml is valid', () => {
  const file = path.join(__dirname, '..', '..', '..', 'scripts', 'config', 'lab.yaml');
  const c = loadConfig(file);
  assert.equal(c.services.length, 2);
  assert.deepEqual(
    c.services[0]!.backends.map((b) => [b.address, b.weight]),
    [
      ['10.77.0.11', 1],
      ['10.77.0.12', 1],
      ['10.77.0.13', 2],
    ],
  );
  assert.equal(c.services[0]!.vip, '10.77.0.100');
});

test('a backend port other than its service port is refused with DR and tunnels, which cannot translate ports', () => {
  assert.deepEqual(problems(service('', '      - { address: 10.77.0.11, port: 8080 }\n')), [
    'lab.yaml: services[0].backends[0].port: is 8080 but the service port is 80: the director forwards packets unchanged (DR rewrites only the MAC) and cannot translate ports, so the real server receives connections on 80: make it listen on 80 and remove port (or set port: 80), forward the service with forwarding: nat (which translates 80 to 8080), or give this backend a service of its own on port 8080 (line 8)',
  ]);
  assert.match(
    problems(
      service('    forwarding: tunnel\n', '      - { address: 10.77.0.11, port: 8080 }\n') +
        'tunnel:\n  source_v4: 10.77.0.2\n',
    ).join('\n'),
    /backends\[0\]\.port: is 8080 but the service port is 80: the director forwards packets unchanged \(a tunnel wraps them\)/,
  );
  assert.equal(
    parseConfig(service('', '      - { address: 10.77.0.11, port: 80 }\n'), 'lab.yaml').services[0]!.backends[0]!.port,
    80,
  );
});

test('a missing or unreadable monitor.password_file is refused when the config file is loaded, naming the file and the fix', () => {
  const missing = path.join(TMP, 'no-such.pw');
  const cfgFile = path.join(TMP, 'pwfile.yaml');
  fs.writeFileSync(cfgFile, MINIMAL.replace('  password_env: PW\n', `  password_file: ${missing}\n`));
  assert.throws(
    () => loadConfig(cfgFile),
    (e: XdError) =>
      e.code === 'XD_ERR_CONFIG_INVALID' &&
      e.message ===
        `${cfgFile}: monitor.password_file: cannot read ${missing} (ENOENT): create it (mode 0600) with the monitor password on one line, or point password_file at the file that holds it (line 5)`,
  );
  fs.writeFileSync(cfgFile, MINIMAL.replace('  password_env: PW\n', `  password_file: ${TMP}\n`));
  assert.throws(
    () => loadConfig(cfgFile),
    /monitor\.password_file: cannot read .* \(EISDIR\): give the file that holds the password, not a directory/,
  );
  const pw = path.join(TMP, 'monitor.pw');
  fs.writeFileSync(pw, 'secret\n', { mode: 0o600 });
  fs.writeFileSync(cfgFile, MINIMAL.replace('  password_env: PW\n', `  password_file: ${pw}\n`));
  assert.equal(loadConfig(cfgFile).monitor?.password_file, pw);
});

test('with VRRP configured, a VRRP VIP that is no service VIP and a service VIP no instance holds are warned about by name', () => {
  const text = MINIMAL + 'vrrp:\n  - { name: vi1, vrid: 5, vips: [10.77.0.200/24] }\n';
  assert.deepEqual(parseConfig(text, 'lab.yaml').warnings, [
    "vrrp[0] (vi1): VIP 10.77.0.200 is no service's VIP: the director takes it on becoming Master but forwards nothing for it; add a service on 10.77.0.200 or remove it from vrrp[0].vips",
    "service mysql: VIP 10.77.0.100 is held by no VRRP instance: no director adds it to its interface, so clients cannot reach it here; add 10.77.0.100 to a vrrp instance's vips (or hold the address some other way)",
  ]);
});

test('no warnings when VRRP holds exactly the service VIPs (canonical forms compared), or without VRRP', () => {
  assert.deepEqual(parseConfig(MINIMAL, 'lab.yaml').warnings, []);
  const v6 =
    MINIMAL.replace('vip: 10.77.0.100', 'vip: "FD00:0::100"').replace(/10\.77\.0\.1(\d)/g, 'fd00::1$1') +
    'vrrp:\n  - { name: vi6, vrid: 6, vips: ["fd00::100/64"] }\n';
  assert.deepEqual(parseConfig(v6, 'lab.yaml').warnings, []);
});

test('a service VIP announced over BGP is not warned about as unheld', () => {
  const text =
    MINIMAL.replace(
      'services:\n  - name: mysql\n    vip: 10.77.0.100',
      'services:\n  - name: other\n    vip: 10.77.0.50\n    port: 3306\n    backends: [ { address: 10.77.0.21 } ]\n  - name: mysql\n    vip: 10.77.0.100',
    ) +
    'vrrp:\n  - { name: vi1, vrid: 5, vips: [10.77.0.50/24] }\nbgp:\n  local_as: 65001\n  router_id: 10.77.0.2\n  neighbours: [ { address: 10.77.0.1, as: 65000 } ]\n  announce: [ { vip: 10.77.0.100 } ]\n';
  assert.deepEqual(parseConfig(text, 'lab.yaml').warnings, []);
});

test('an unknown key is an error with a did-you-mean suggestion', () => {
  const p = problems(service('    prot: tcp\n'));
  assert.deepEqual(p, ['lab.yaml: services[0].prot: unknown key; did you mean "port"? (line 7)']);
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  ringSize: 65537\n'), [
    'lab.yaml: xdp.ringSize: unknown key; did you mean "ring_size"? (line 14)',
  ]);
});

test('an unknown key with no close match lists the allowed keys', () => {
  const p = problems(MINIMAL + 'frobnicate: 1\n');
  assert.equal(p.length, 1);
  assert.match(
    p[0]!,
    /^lab\.yaml: frobnicate: unknown key \(allowed here: instance, interface, dataplane, xdp, admin, state_dir, log, script_user, monitor, health, vrrp, bgp, sync, tunnel, nat, services\) \(line 13\)$/,
  );
});

test('an unknown key inside the health section is reported with its path', () => {
  assert.deepEqual(problems(MINIMAL + 'health:\n  rsie: 2\n'), [
    'lab.yaml: health.rsie: unknown key; did you mean "rise"? (line 14)',
  ]);
});

test('a malformed address names the key path and the value', () => {
  assert.deepEqual(problems(service('', '      - address: 10.77.0.300\n')), [
    'lab.yaml: services[0].backends[0].address: is not an IPv4 or IPv6 address: "10.77.0.300" (write e.g. "10.77.0.11" or "fd00::11") (line 8)',
  ]);
  assert.deepEqual(problems(service('').replace('vip: 10.77.0.100', 'vip: 10.77.0.0/24')), [
    'lab.yaml: services[0].vip: must be a single address without a prefix length, got "10.77.0.0/24" (line 5)',
  ]);
  assert.deepEqual(problems(service('').replace('vip: 10.77.0.100', 'vip: 224.0.0.18')), [
    'lab.yaml: services[0].vip: "224.0.0.18" is a multicast address: use a unicast address (line 5)',
  ]);
});

test('a duplicate service (same VIP, port and protocol) is an error', () => {
  const text = service('') + '  - name: t\n    vip: 10.77.0.100\n    port: 80\n    backends: []\n';
  assert.deepEqual(problems(text), [
    'lab.yaml: services[1]: duplicate service: 10.77.0.100:80/tcp is already services[0] (s): one service per VIP, port and protocol (line 9)',
  ]);
  // The same VIP and port over UDP is another service.
  assert.equal(
    parseConfig(text.replace('port: 80\n    backends: []', 'port: 80\n    protocol: udp\n    backends: []'), 'lab.yaml')
      .services.length,
    2,
  );
});

test('a duplicate service name is an error', () => {
  const text = service('') + '  - name: s\n    vip: 10.77.0.101\n    port: 80\n    backends: []\n';
  assert.deepEqual(problems(text), [
    'lab.yaml: services[1].name: duplicate service name "s" (also services[0]): service names must be unique (line 9)',
  ]);
});

test('a duplicate backend in a service is an error, also when written differently', () => {
  assert.deepEqual(
    problems(service('', '      - address: 10.77.0.11\n      - address: 10.77.0.11\n        port: 80\n')),
    ['lab.yaml: services[0].backends[1]: duplicate backend 10.77.0.11:80 in service s (also backends[0]) (line 9)'],
  );
  const v6 = service('', '      - address: "fd00::1"\n      - address: "fd00:0:0::0001"\n').replace(
    'vip: 10.77.0.100',
    'vip: "fd00::100"',
  );
  assert.deepEqual(problems(v6), [
    'lab.yaml: services[0].backends[1]: duplicate backend [fd00::1]:80 in service s (also backends[0]) (line 9)',
  ]);
});

test('a negative or fractional weight is an error', () => {
  assert.deepEqual(problems(service('', '      - address: 10.77.0.11\n        weight: 1.5\n')), [
    'lab.yaml: services[0].backends[0].weight: must be an integer >= 0, got 1.5 (line 9)',
  ]);
  assert.deepEqual(problems(service('', '      - address: 10.77.0.11\n        weight: -1\n')), [
    'lab.yaml: services[0].backends[0].weight: must be an integer >= 0, got -1 (line 9)',
  ]);
  assert.deepEqual(problems(service('', '      - address: 10.77.0.11\n        weight: "2"\n')), [
    'lab.yaml: services[0].backends[0].weight: must be an integer >= 0, got "2" (line 9)',
  ]);
});

test('a port out of range 1-65535 is an error for services and backends', () => {
  assert.deepEqual(problems(service('').replace('port: 80', 'port: 70000')), [
    'lab.yaml: services[0].port: must be an integer from 1 to 65535, got 70000 (line 6)',
  ]);
  assert.deepEqual(problems(service('').replace('port: 80', 'port: 0')), [
    'lab.yaml: services[0].port: must be an integer from 1 to 65535, got 0 (line 6)',
  ]);
  assert.deepEqual(problems(service('', '      - address: 10.77.0.11\n        port: 65536\n')), [
    'lab.yaml: services[0].backends[0].port: must be an integer from 1 to 65535, got 65536 (line 9)',
  ]);
});

test('a backend of another address family than the VIP is an error', () => {
  assert.deepEqual(problems(service('', '      - address: "fd00::11"\n')), [
    "lab.yaml: services[0].backends[0].address: is IPv6 but the service VIP 10.77.0.100 is IPv4: DR forwarding keeps the packet, so a backend has the VIP's family (or use forwarding: tunnel, which carries IPv4 over IPv6) (line 8)",
  ]);
});

test('an embryonic table under 64 entries or a negative new-flow rate is an error, a rate of 0 (no limit) is accepted', () => {
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  embryonic_table_size: 16\n'), [
    'lab.yaml: xdp.embryonic_table_size: must be an integer >= 64, got 16 (line 14)',
  ]);
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  new_flow_rate: -1\n'), [
    'lab.yaml: xdp.new_flow_rate: must be an integer from 0 to 100000000, got -1 (line 14)',
  ]);
  const c = parseConfig(MINIMAL + 'xdp:\n  new_flow_rate: 0\n  embryonic_table_size: 4096\n', 'lab.yaml');
  assert.deepEqual([c.xdp.newFlowRate, c.xdp.embryonicTableSize], [0, 4096]);
});

test('a ring size that is not prime or out of range is an error', () => {
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  ring_size: 65536\n'), [
    'lab.yaml: xdp.ring_size: must be a prime (Maglev needs one), got 65536: the next prime is 65537 (line 14)',
  ]);
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  ring_size: 13\n'), [
    'lab.yaml: xdp.ring_size: must be a prime from 251 to 16777213, got 13 (line 14)',
  ]);
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  ipvs_mh_size: 4091\n'), [
    "lab.yaml: xdp.ipvs_mh_size: must be the kernel's IP_VS_MH_TAB_SIZE, one of 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071 (Debian: 4093), got 4091 (line 14)",
  ]);
});

test('a malformed or multicast MAC is an error', () => {
  assert.deepEqual(problems(service('', '      - address: 10.77.0.11\n        mac: "02:00:00:00:11"\n')), [
    'lab.yaml: services[0].backends[0].mac: must be a MAC address like "02:00:00:00:00:11", got "02:00:00:00:11" (line 9)',
  ]);
  assert.deepEqual(problems(service('', '      - address: 10.77.0.11\n        mac: "ff:ff:ff:ff:ff:ff"\n')), [
    'lab.yaml: services[0].backends[0].mac: "ff:ff:ff:ff:ff:ff" is a multicast/broadcast MAC: give the real server\'s unicast interface MAC (line 9)',
  ]);
});

test('an invalid interface name is an error', () => {
  assert.deepEqual(problems(MINIMAL.replace('interface: eth0', 'interface: averyveryverylongname')), [
    'lab.yaml: interface: is not a valid interface name: "averyveryverylongname" (1 to 15 characters, no "/", ":" or spaces) (line 2)',
  ]);
  assert.deepEqual(problems(MINIMAL.replace('interface: eth0', 'interface: "eth0:1"')), [
    'lab.yaml: interface: is not a valid interface name: "eth0:1" (1 to 15 characters, no "/", ":" or spaces) (line 2)',
  ]);
});

test('durations are written with their unit, decimals allowed', () => {
  const c = parseConfig(
    MINIMAL + 'health:\n  interval: 2m\n  timeout: 500ms\n  fresh_connect_interval: 1.5s\n  max_replication_lag: 1s\n',
    'lab.yaml',
  );
  assert.equal(c.health.interval, 120000);
  assert.equal(c.health.timeout, 500);
  assert.equal(c.health.fresh_connect_interval, 1500);
  assert.equal(c.health.max_replication_lag, 1000);
  const p = problems(MINIMAL + 'health:\n  interval: 5 parsecs\n');
  assert.equal(p.length, 1);
  assert.match(
    p[0]!,
    /^lab\.yaml: health\.interval: must be a duration with its unit \(ms, s, m or h\), e\.g\. "500ms", "1\.5s" or "2m", got "5 parsecs" \(line 14\)$/,
  );
});

test('a bare number as a duration is refused under health, monitor and vrrp alike, naming the key and both readings', () => {
  const p = problems(
    MINIMAL.replace('  password_env: PW\n', '  password_env: PW\n  connect_timeout: 2\n') +
      'health:\n  max_replication_lag: 10\nvrrp:\n  - name: a\n    vrid: 5\n    vips: [10.77.0.100]\n    advert_interval: "1000"\n',
  );
  assert.deepEqual(p, [
    'lab.yaml: monitor.connect_timeout: is a bare number (2): durations need their unit, write 2s or 2ms (line 6)',
    'lab.yaml: health.max_replication_lag: is a bare number (10): durations need their unit, write 10s or 10ms (line 15)',
    'lab.yaml: vrrp[0].advert_interval: is a bare number ("1000"): durations need their unit, write 1000s or 1000ms (line 20)',
  ]);
});

test('a missing required key is reported at its parent', () => {
  assert.deepEqual(problems('instance: lab\nservices: []\n'), ['lab.yaml: interface: is required (line 1)']);
  assert.deepEqual(problems(service('').replace('    port: 80\n', '')), [
    'lab.yaml: services[0].port: is required (line 4)',
  ]);
  assert.deepEqual(problems('instance: lab\ninterface: eth0\n'), [
    'lab.yaml: services: is required: list at least one service (line 1)',
  ]);
});

test('all problems are collected, in file order', () => {
  const text = `instance: lab
interface: eth0
dataplan: xdp
services:
  - name: s
    vip: 10.77.0.100
    port: 80
    backends:
      - address: 10.77.0.11
        weight: 1.5
      - address: nope
`;
  try {
    parseConfig(text, 'lab.yaml');
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof XdError);
    assert.deepEqual(e.message.split('\n'), [
      'lab.yaml: dataplan: unknown key; did you mean "dataplane"? (line 3)',
      'lab.yaml: services[0].backends[0].weight: must be an integer >= 0, got 1.5 (line 10)',
      'lab.yaml: services[0].backends[1].address: is not an IPv4 or IPv6 address: "nope" (write e.g. "10.77.0.11" or "fd00::11") (line 11)',
    ]);
    const detail = e.detail as { file: string; problems: { path: string; line: number }[] };
    assert.equal(detail.file, 'lab.yaml');
    assert.deepEqual(
      detail.problems.map((p) => [p.path, p.line]),
      [
        ['dataplan', 3],
        ['services[0].backends[0].weight', 10],
        ['services[0].backends[1].address', 11],
      ],
    );
  }
});

test('invalid YAML is a parse error with the line', () => {
  const p = problems('instance: lab\nservices: [1, 2\ninterface: eth0\n', 'XD_ERR_CONFIG_PARSE');
  assert.ok(p.length >= 1);
  assert.match(p[0]!, /^lab\.yaml: not valid YAML: .*\(line \d+\)$/);
});

test('a key given twice in YAML is a parse error', () => {
  assert.deepEqual(problems('instance: lab\ninstance: lab2\n', 'XD_ERR_CONFIG_PARSE'), [
    'lab.yaml: not valid YAML: Map keys must be unique, column 1 (line 2)',
  ]);
});

test('an empty file and a file that is not a map are errors', () => {
  assert.deepEqual(problems(''), ['lab.yaml: the file is empty: it needs at least instance, interface and services']);
  assert.deepEqual(problems('- a\n- b\n'), [
    'lab.yaml: must be a map of settings (instance, interface, services, ...), got a list (line 1)',
  ]);
});

test('loadConfig reads a file and names it in errors', () => {
  const good = path.join(TMP, 'good.yaml');
  fs.writeFileSync(good, MINIMAL);
  assert.equal(loadConfig(good).source, good);
  const bad = path.join(TMP, 'bad.yaml');
  fs.writeFileSync(bad, MINIMAL.replace('port: 3306', 'port: 3306.5'));
  assert.throws(() => loadConfig(bad), {
    code: 'XD_ERR_CONFIG_INVALID',
    message: `${bad}: services[0].port: must be an integer from 1 to 65535, got 3306.5 (line 9)`,
  });
  const missing = path.join(TMP, 'missing.yaml');
  assert.throws(() => loadConfig(missing), {
    code: 'XD_ERR_CONFIG_READ',
    message: `${missing}: cannot read the config file: no such file or directory (ENOENT): check the path given with -c`,
  });
});

test('a backend name used for two real servers is an error', () => {
  assert.deepEqual(
    problems(service('', '      - { address: 10.77.0.11, name: db }\n      - { address: 10.77.0.12, name: db }\n')),
    [
      'lab.yaml: services[0].backends[1].name: backend name "db" is already used for 10.77.0.11:80 at services[0].backends[0]: names must be unique across the config (xdirector drain NAME) (line 9)',
    ],
  );
});

test('one real server in two services may share its default name', () => {
  const text =
    service('') + '  - name: t\n    vip: 10.77.0.101\n    port: 80\n    backends:\n      - address: 10.77.0.11\n';
  const c = parseConfig(text, 'lab.yaml');
  assert.equal(c.services[0]!.backends[0]!.name, c.services[1]!.backends[0]!.name);
});

test('two names for one real server is an error', () => {
  const text =
    service('', '      - { address: 10.77.0.11, name: a }\n') +
    '  - name: t\n    vip: 10.77.0.101\n    port: 80\n    backends:\n      - { address: 10.77.0.11, port: 80, name: b }\n';
  assert.deepEqual(problems(text), [
    'lab.yaml: services[1].backends[0].name: real server 10.77.0.11:80 is already named "a" at services[0].backends[0].name: give it one name everywhere (line 13)',
  ]);
});

test('a mysql check without a monitor section is an error', () => {
  assert.deepEqual(problems(MINIMAL.replace('monitor:\n  user: monitor\n  password_env: PW\n', '')), [
    'lab.yaml: monitor is required: service mysql uses check: mysql (the default on port 3306); add a monitor section (user, password_file or password_env) or set check: tcp or none (line 1)',
  ]);
});

test('an ipvs-mh ring with a scheduler other than maglev or sh is an error', () => {
  assert.deepEqual(problems(service('    scheduler: wrr\n    ring: ipvs-mh\n')), [
    "lab.yaml: services[0].ring: ipvs-mh is the ring of the kernel's mh scheduler, used for scheduler maglev (mh with mh-port) or sh (mh without port), not wrr: remove ring or change the scheduler (line 8)",
  ]);
});

test('an unknown scheduler suggests the closest', () => {
  assert.deepEqual(problems(service('    scheduler: wlc\n')), [
    'lab.yaml: services[0].scheduler: must be one of "maglev", "sh", "wrr", "rr", "lc", got "wlc"; did you mean "lc"? (line 7)',
  ]);
});

test('more services than xdp.max_services is an error', () => {
  const text =
    service('') + '  - name: t\n    vip: 10.77.0.101\n    port: 80\n    backends: []\nxdp:\n  max_services: 1\n';
  assert.deepEqual(problems(text), [
    'lab.yaml: services: 2 services exceed xdp.max_services 1: raise xdp.max_services (line 4)',
  ]);
});

test('backendKey brackets IPv6 and canonicalises the address', () => {
  assert.equal(backendKey('10.0.0.1', 3306), '10.0.0.1:3306');
  assert.equal(backendKey('FD00:0:0::1', 3306), '[fd00::1]:3306');
});

test('the real-host example in scripts/config/example.yaml is valid and every backend listens on its service port', () => {
  // Parsed without the file checks: its monitor.password_file lives on the real host.
  const file = path.join(__dirname, '..', '..', '..', 'scripts', 'config', 'example.yaml');
  const c = parseConfig(fs.readFileSync(file, 'utf8'), file);
  assert.deepEqual(
    c.services.map((s) => [s.name, s.pool, s.ring, s.ringSize]),
    [
      ['mysql-rw', 'writer', 'ipvs-mh', 4093],
      ['mysql-ro', 'readers', 'maglev', 65537],
    ],
  );
  assert.deepEqual(
    c.services.map((s) => [s.vip, s.port, [...new Set(s.backends.map((b) => b.port))]]),
    [
      ['192.0.2.100', 3306, [3306]],
      ['192.0.2.101', 3306, [3306]],
    ],
  );
  assert.equal(c.vrrp[0]!.interface, 'eth0');
  assert.equal(c.services[1]!.backends[2]!.mac, '52:54:00:12:34:13');
});

test('an ipvs-mh ring larger than xdp.ring_size is an error', () => {
  assert.deepEqual(problems(MINIMAL + 'xdp:\n  ring_size: 251\n'), [
    'lab.yaml: services[0].name: the ipvs-mh ring needs 4093 slots but xdp.ring_size (the slots per service in the rings map) is 251: raise xdp.ring_size to a prime >= 4093, or set ring: maglev (line 7)',
  ]);
});

test('problems from the VRRP and monitor sections are worded with their key path', () => {
  const base = 'instance: lab\ninterface: eth0\nservices: []\n';
  assert.deepEqual(problems(base + 'vrrp:\n  - name: a\n    vrid: 5\n    vips: [10.0.0.1]\n    priorty: 100\n'), [
    'lab.yaml: vrrp[0].priorty: unknown key; did you mean "priority"? (line 8)',
  ]);
  assert.deepEqual(problems(base + 'vrrp:\n  - name: a\n    vrid: 300\n    vips: [10.0.0.1]\n'), [
    'lab.yaml: vrrp[0].vrid: must be <= 255, got 300 (line 6)',
  ]);
  assert.deepEqual(
    problems(base + 'vrrp:\n  - name: a\n    vrid: 5\n    vips: [10.0.0.1]\n    advert_interval: true\n'),
    [
      'lab.yaml: vrrp[0].advert_interval: must be a duration with its unit (ms, s, m or h), e.g. "500ms", "1.5s" or "2m", got true (line 8)',
    ],
  );
  assert.deepEqual(problems(base + 'vrrp: {}\n'), ['lab.yaml: vrrp: must be a list, got a map (line 4)']);
  assert.deepEqual(problems(base + 'monitor:\n  usr: x\n  password_env: P\n'), [
    'lab.yaml: monitor.user: is required (line 5)',
    'lab.yaml: monitor.usr: unknown key; did you mean "user"? (line 5)',
  ]);
});

test('a nat service is accepted on every dataplane (parseConfig throws on any problem): XDP forwards NAT as IPVS does', () => {
  const nat = '    forwarding: nat\n    check: tcp\n';
  const backends = '      - { address: 10.77.0.11, port: 3306 }\n';
  for (const dp of ['auto', 'ipvs', 'xdp']) {
    assert.equal(
      parseConfig(`dataplane: ${dp}\n` + service(nat, backends), 'lab.yaml').services[0]!.forwarding,
      'nat',
      dp,
    );
  }
});
