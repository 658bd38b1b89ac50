// CLI conventions: --version, --help for every command, exit 2 for usage errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/xdirector.js');
const xd = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

test('--version prints the package version', () => {
  const r = xd(['--version']);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, `xdirector ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}\n`);
});

test('every command answers --help with its usage and exit 0', () => {
  for (const cmd of [
    'run',
    'check-config',
    'status',
    'drain',
    'undrain',
    'maint',
    'unmaint',
    'weight',
    'dataplane',
    'reload',
    'metrics',
    'stop',
    'resign',
    'bench',
    'import-keepalived',
    'realserver',
    'check',
  ]) {
    const r = xd([cmd, '--help']);
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: xdirector ${cmd}\\b`), cmd);
  }
});

test('usage errors exit 2 and say what is wrong: unknown command, unknown option, missing argument', () => {
  for (const [args, re] of [
    [['frob'], /unknown command "frob"/],
    [['status', '--bogus'], /status: Unknown option '--bogus'/],
    [['run'], /run needs -c FILE/],
  ] as const) {
    const r = xd([...args]);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, re);
  }
});

test('status --exact prints counters in full where the default abbreviates them', async () => {
  const { formatStatus } = await import('../../src/cli/format');
  const { daemonStatus } = await import('../lib/status');
  const st = daemonStatus(
    {
      kind: 'xdp',
      detail: {
        interface: 'eth0',
        mode: 'native',
        programId: 1,
        pinDir: '/sys/fs/bpf/x',
        flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 },
      },
      services: [
        {
          name: 's',
          proto: 'tcp',
          vip: '10.0.0.1',
          port: 3306,
          scheduler: 'maglev',
          newFlows: 123456,
          packets: 98765432,
          bytes: 5,
          noBackend: 0,
          backends: [],
        },
      ],
    },
    { instance: 'x', pid: 1 },
  );
  const line = (o?: { exact: boolean }) =>
    formatStatus(st, o)
      .split('\n')
      .find((l) => l.startsWith('TCP'))!;
  assert.match(line(), /123K\s+99M/);
  assert.match(line({ exact: true }), /123456\s+98765432/);
});

test('the new commands are in the usage text and the README command list', () => {
  const usage = xd(['--help']).stdout;
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  for (const c of ['status [--json] [--exact] [--rate]', 'drain TARGET', 'maint TARGET', 'weight TARGET N', 'reload'])
    assert.ok(usage.includes(c), `usage lists ${c}`);
  for (const c of [
    'xdirector status --rate',
    'xdirector drain SERVICE/BACKEND',
    'xdirector maint SERVICE/BACKEND',
    'xdirector weight SERVICE/BACKEND N',
    'xdirector reload',
  ])
    assert.ok(readme.includes(c), `README lists ${c}`);
});

test("usage errors of drain, maint and weight exit 2 with the problem and the command's usage, before any daemon is asked", () => {
  const cases: [string[], string][] = [
    [
      ['drain'],
      'xdirector: drain: needs a TARGET: BACKEND (name or address:port, every service) or SERVICE/BACKEND\nusage: xdirector drain SERVICE/BACKEND',
    ],
    [
      ['maint', 'db1', 'db2'],
      'xdirector: maint: unexpected argument "db2" (takes a TARGET: BACKEND (name or address:port, every service) or SERVICE/BACKEND)\nusage: xdirector maint',
    ],
    [
      ['weight', 'rw/db1'],
      'xdirector: weight: needs a TARGET and a weight N (or TARGET --reset)\nusage: xdirector weight',
    ],
    [
      ['weight', 'rw/db1', 'heavy'],
      'xdirector: weight: the weight must be an integer from 0 to 65535, got "heavy"\nusage: xdirector weight',
    ],
    [
      ['weight', 'rw/db1', '3', '--reset'],
      'xdirector: weight: unexpected argument "3" (takes a TARGET (with --reset, no weight))\nusage: xdirector weight',
    ],
    [
      ['status', 'extra'],
      'xdirector: status: unexpected argument "extra" (takes no argument)\nusage: xdirector status',
    ],
    [['unmaint', '--rate'], "xdirector: unmaint: Unknown option '--rate'"],
  ];
  for (const [args, start] of cases) {
    const r = xd([...args, '--socket', '/nonexistent/xd.sock']);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(start), `${args.join(' ')}: ${r.stderr}`);
  }
});

test('a negative weight reaches the daemon to be refused by its range rule instead of reading as an option', () => {
  const r = xd(['weight', 'rw/db1', '-1', '--socket', '/nonexistent/xd.sock']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot reach xdirector at \/nonexistent\/xd\.sock/);
});

test('status --rate prints CPS, InPPS and InBPS per service and backend like ipvsadm --rate, in full with --exact', async () => {
  const { formatRates } = await import('../../src/cli/format');
  const { daemonStatus } = await import('../lib/status');
  const b = {
    key: '10.0.0.2:3306',
    name: 'db2',
    address: '10.0.0.2',
    port: 3306,
    weight: 1,
    state: 'active' as const,
    activeFlows: 0,
    inactiveFlows: 0,
    packets: 0,
    bytes: 0,
    newFlows: 0,
  };
  const st = daemonStatus(
    {
      kind: 'xdp',
      detail: {
        interface: 'eth0',
        mode: 'native',
        programId: 1,
        pinDir: '/sys/fs/bpf/x',
        flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 },
      },
      services: [
        {
          name: 's',
          proto: 'tcp',
          vip: '10.0.0.1',
          port: 3306,
          scheduler: 'maglev',
          newFlows: 0,
          packets: 0,
          bytes: 0,
          noBackend: 0,
          backends: [b],
        },
      ],
    },
    {
      rates: {
        intervalSeconds: 2,
        at: new Date(0).toISOString(),
        services: [
          {
            name: 's',
            cps: 12.5,
            inPps: 123456.4,
            inBps: 2.25,
            backends: [{ key: b.key, name: 'db2', cps: 0, inPps: 50, inBps: 4000 }],
          },
        ],
      },
    },
  );
  const out = formatRates(st);
  assert.match(out, /^Prot LocalAddress:Port\s+CPS\s+InPPS\s+InBPS$/m);
  assert.match(out, /^TCP {2}10\.0\.0\.1:3306\s+13\s+123K\s+2\.3\s+s$/m);
  assert.match(out, /^ {2}-> 10\.0\.0\.2:3306\s+0\s+50\s+4000\s+db2$/m);
  assert.match(formatRates(st, { exact: true }), /^TCP {2}10\.0\.0\.1:3306\s+13\s+123456\s+2\.3/m);
  assert.match(formatRates(daemonStatus(st.dataplane)), /no rates yet/);
});
