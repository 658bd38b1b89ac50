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
  for (const cmd of ['run', 'check-config', 'status', 'drain', 'undrain', 'dataplane', 'reload', 'metrics', 'stop', 'bench', 'import-keepalived', 'realserver']) {
    const r = xd([cmd, '--help']);
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: xdirector ${cmd}\\b`), cmd);
  }
});

test('usage errors exit 2 and say what is wrong: unknown command, unknown option, missing argument', () => {
  for (const [args, re] of [[['frob'], /unknown command "frob"/], [['status', '--bogus'], /status: Unknown option '--bogus'/], [['run'], /run needs -c FILE/]] as const) {
    const r = xd([...args]);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, re);
  }
});

test('status --exact prints counters in full where the default abbreviates them', async () => {
  const { formatStatus } = await import('../../src/cli/format');
  const { daemonStatus } = await import('../lib/status');
  const st = daemonStatus({
    kind: 'xdp', detail: { interface: 'eth0', mode: 'native', programId: 1, pinDir: '/sys/fs/bpf/x', flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 } },
    services: [{ name: 's', proto: 'tcp', vip: '10.0.0.1', port: 3306, scheduler: 'maglev', newFlows: 123456, packets: 98765432, bytes: 5, noBackend: 0, backends: [] }],
  }, { instance: 'x', pid: 1 });
  const line = (o?: { exact: boolean }) => formatStatus(st, o).split('\n').find((l) => l.startsWith('TCP'))!;
  assert.match(line(), /123K\s+99M/);
  assert.match(line({ exact: true }), /123456\s+98765432/);
});
