// The CLI's refusals: a bad config or a missing interface is a clear error with
// a non-zero exit, and nothing is applied (no pins, no program).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { BIN } from '../daemon/harness';
import { statusJson } from '../../src/cli/format';
import { loadConfig } from '../../src/config/load';
import type { DaemonStatus } from '../../src/daemon/status';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xtcli${process.pid}-`));
const pinDir = `/sys/fs/bpf/xtcli${process.pid}`;
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(pinDir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr });
    });
  });
}

function write(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

const good = (iface: string) => `instance: xtcli${process.pid}
interface: ${iface}
dataplane: xdp
xdp: { mode: generic, pin_dir: ${pinDir}, max_services: 4, max_backends: 64, flow_table_size: 4096 }
admin: { socket: ${tmp}/a.sock }
state_dir: ${tmp}
services:
  - name: mysql
    vip: 10.99.0.100
    port: 3306
    check: none
    backends:
      - { address: 10.99.0.11, mac: "02:00:00:00:00:11" }
`;

test('check-config accepts a good file and lists its services', async () => {
  const r = await cli(['check-config', '-c', write('good.yaml', good('lo'))]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /OK .*1 service/);
  assert.match(r.stdout, /mysql: TCP 10\.99\.0\.100:3306 maglev, 1 backend/);
});

test('check-config refuses a bad file naming the file, the key path and the problem', async () => {
  const f = write('bad.yaml', good('lo').replace('port: 3306', 'port: 70000').replace('check: none', 'chek: none'));
  const r = await cli(['check-config', '-c', f]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`bad\\.yaml: services\\[0\\]\\.port: .*1.*65535.*70000`));
  assert.match(r.stderr, /services\[0\]\.chek: .*check/);
});

test('run with a bad config exits non-zero and applies nothing', async () => {
  const f = write('bad2.yaml', good('lo').replace('weight', 'x').replace('10.99.0.11', '10.99.0.300'));
  const r = await cli(['run', '-c', f]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /services\[0\]\.backends\[0\]\.address/);
  assert.equal(fs.existsSync(pinDir), false, 'nothing pinned');
});

test('run on a missing interface exits non-zero naming the interface and the fix, leaving no pins', async () => {
  const r = await cli(['run', '-c', write('noif.yaml', good('xdnosuch0'))]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /xdnosuch0/);
  assert.match(r.stderr, /fix:|ip link/);
  assert.equal(
    fs.readdirSync('/sys/fs/bpf').includes(`xtcli${process.pid}`) && fs.readdirSync(pinDir).length > 0,
    false,
    'nothing pinned',
  );
});

test('status without a running daemon says how to reach one', async () => {
  const r = await cli(['status', '--socket', path.join(tmp, 'none.sock')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot reach xdirector at .*none\.sock.*is `xdirector run` running/);
});

test('check-config refuses a monitor.password_file that cannot be read, naming the file and the fix', async () => {
  const missing = path.join(tmp, 'absent.pw');
  const f = write(
    'pw.yaml',
    good('lo').replace('\nservices:', `\nmonitor: { user: m, password_file: ${missing} }\nservices:`),
  );
  const r = await cli(['check-config', '-c', f]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `pw\\.yaml: monitor\\.password_file: cannot read ${missing.replace(/[.]/g, '\\.')} \\(ENOENT\\): create it \\(mode 0600\\)`,
    ),
  );
});

test('check-config prints a warning for each VRRP VIP that is no service VIP and each service VIP no instance holds', async () => {
  const f = write('warn.yaml', `${good('lo')}vrrp:\n  - { name: vi1, vrid: 9, vips: [10.99.0.200/24] }\n`);
  const r = await cli(['check-config', '-c', f]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warn\.yaml: warning: vrrp\[0\] \(vi1\): VIP 10\.99\.0\.200 is no service's VIP/);
  assert.match(r.stderr, /warn\.yaml: warning: service mysql: VIP 10\.99\.0\.100 is held by no VRRP instance/);
});

test('a bare xdirector is a usage error: the usage on stderr, exit 2; a mistyped command gets a "did you mean"', async () => {
  const r = await cli([]);
  assert.deepEqual([r.code, r.stdout], [2, '']);
  assert.match(r.stderr, /^xdirector: a command is needed\nusage: xdirector <command>/);
  const typo = await cli(['stauts']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^xdirector: unknown command "stauts"; did you mean "status"\?/);
});

/** The CLI as an unprivileged user (nobody), with no capabilities. */
function cliAsNobody(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, BIN, ...args],
      { timeout: 30000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr });
      },
    );
  });
}

test('as a user without the capabilities, run and status say to run as root (CAP_NET_ADMIN, CAP_BPF)', async () => {
  const f = write('nobody.yaml', good('lo'));
  fs.chmodSync(f, 0o644);
  const run = await cliAsNobody(['run', '-c', f]);
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /^xdirector: run: this process lacks CAP_NET_ADMIN and CAP_BPF .*: run as root \(CAP_NET_ADMIN, CAP_BPF\)\n$/,
  );
  // A listening admin socket in a directory only root can enter (as /run/xdirector is).
  const sock = path.join(tmp, 'root.sock');
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const st = await cliAsNobody(['status', '--socket', sock]);
    assert.equal(st.code, 1);
    assert.match(
      st.stderr,
      /cannot reach xdirector at .*root\.sock: .*EACCES.*: the admin socket is root's: run as root \(CAP_NET_ADMIN, CAP_BPF\)/,
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('status --json carries the version, and status --rate --json says "warming up" before the first rates', () => {
  const st = { instance: 'x', pid: 1, rates: null } as unknown as DaemonStatus;
  const version = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')).version;
  assert.equal(JSON.parse(statusJson(st, { rate: false })).version, version);
  assert.equal(
    JSON.parse(statusJson({ ...st, version: '0.0.1-old' }, { rate: false })).version,
    '0.0.1-old',
    "the daemon's own version first",
  );
  assert.deepEqual(JSON.parse(statusJson(st, { rate: true })).state, 'warming up');
});

test('check-config warns about a password file other users can read', async () => {
  const pw = path.join(tmp, 'monitor.pw');
  fs.writeFileSync(pw, 'secret\n', { mode: 0o644 });
  fs.chmodSync(pw, 0o644);
  const f = write(
    'pwmode.yaml',
    good('lo').replace('\nservices:', `\nmonitor: { user: m, password_file: ${pw} }\nservices:`),
  );
  const r = await cli(['check-config', '-c', f]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /pwmode\.yaml: warning: monitor\.password_file: .*monitor\.pw is readable by every user \(mode 0644\): anyone who reads it has the monitor account's password; chmod 600 /,
  );
  fs.chmodSync(pw, 0o600);
  assert.deepEqual(
    loadConfig(f).warnings.filter((w) => /password_file/.test(w)),
    [],
    'mode 0600: no warning',
  );
});
