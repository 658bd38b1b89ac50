// Drained backends on disk (src/daemon/drains.ts): written atomically with mode
// 0600, never through a symlink, and a corrupt or unsafe file stops the daemon
// at start with the path and the fix, the file left as it was.
//
// Files live in a temp directory xtdr<pid>-*, removed in after(). The first daemon
// start (`xdirector run`) is refused before it touches bpffs or an interface; its
// config names an interface that does not exist, so that a daemon that ignored the
// file would fail too (for another reason) instead of attaching anything.
// The state directory (state_dir): files move there from beside the admin socket,
// survive a restart whose run directory is new (a reboot empties /run), and a full
// disk (a 16 KiB tmpfs this test mounts on its own temp directory and unmounts in
// after()) does not refuse a drain. Those daemons run in the namespace xtdr<pid>n
// (veth to xtdr<pid>p, generic XDP, pins under /sys/fs/bpf/xtdr<pid>), removed in after().
import { test, after, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { DrainStore, WeightStore, migrateStateFiles } from '../../src/daemon/drains';
import { XdError } from '../../src/errors';
import { BIN } from './harness';
import { apiCall } from '../../src/api/client';
import type { DaemonStatus } from '../../src/daemon/status';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xtdr${process.pid}-`));
const pinDir = `/sys/fs/bpf/xtdr${process.pid}`;
const ns = `xtdr${process.pid}n`;
const fullDir = path.join(tmp, 'full');
after(() => {
  spawnSync('umount', [fullDir]);
  for (const n of [ns, `xtdr${process.pid}p`]) spawnSync('ip', ['netns', 'del', n]);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(pinDir, { recursive: true, force: true });
});

let n = 0;
function store(): DrainStore {
  const dir = path.join(tmp, `s${n++}`);
  fs.mkdirSync(dir);
  return new DrainStore(path.join(dir, 'lab.drained.json'));
}

function refused(fn: () => unknown, file: string, problem: RegExp): XdError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof XdError, String(err));
    assert.equal(err.code, 'XD_ERR_STATE_FILE');
    assert.ok(err.message.includes(file), `names the file: ${err.message}`);
    assert.match(err.message, problem);
    assert.match(err.message, /fix: .*rm /);
    return err;
  }
  assert.fail('expected XD_ERR_STATE_FILE');
}

test('a missing drains file means no backend is drained', () => {
  assert.deepEqual([...store().load()], []);
});

test('save writes the names with mode 0600 through a new file renamed into place, leaving no temp file', () => {
  const s = store();
  s.save(['db1']);
  const before = fs.statSync(s.file);
  s.save(['db2', 'db1']);
  const after = fs.statSync(s.file);
  assert.equal(after.mode & 0o777, 0o600);
  // A new inode: the old file was replaced whole, never truncated and rewritten in place.
  assert.notEqual(after.ino, before.ino);
  assert.deepEqual(fs.readdirSync(path.dirname(s.file)), ['lab.drained.json']);
  assert.deepEqual([...s.load()].sort(), ['db1', 'db2']);
});

test('save replaces a symlink at the path instead of writing through it', () => {
  const s = store();
  const target = path.join(tmp, `target${n}`);
  fs.writeFileSync(target, 'precious\n');
  fs.symlinkSync(target, s.file);
  s.save(['db1']);
  assert.equal(fs.readFileSync(target, 'utf8'), 'precious\n');
  assert.equal(fs.lstatSync(s.file).isSymbolicLink(), false);
});

test('a drains file that is a symlink is refused, naming the path and the fix', () => {
  const s = store();
  const target = path.join(tmp, `target${n}`);
  fs.writeFileSync(target, '["db1"]');
  fs.symlinkSync(target, s.file);
  refused(() => s.load(), s.file, /symlink/);
});

test('a drains file that is not valid JSON is refused, naming the path and the fix', () => {
  const s = store();
  fs.writeFileSync(s.file, '["db1", "db', { mode: 0o600 });
  refused(() => s.load(), s.file, /not valid JSON/);
});

test('a drains file that is JSON but not a list of names is refused', () => {
  const s = store();
  fs.writeFileSync(s.file, '{"db1": true}', { mode: 0o600 });
  refused(() => s.load(), s.file, /not a list of backend names/);
});

test('a drains path that is not a regular file is refused', () => {
  const s = store();
  fs.mkdirSync(s.file);
  refused(() => s.load(), s.file, /not a regular file/);
});

test('xdirector run refuses to start on a corrupt drains file, naming it and the fix, and keeps the file', async () => {
  const dir = path.join(tmp, 'run');
  fs.mkdirSync(dir);
  const instance = `xtdr${process.pid}`;
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(
    cfg,
    `instance: ${instance}
interface: xdnosuch0
dataplane: xdp
xdp: { mode: generic, pin_dir: ${pinDir}, max_services: 4, max_backends: 64, flow_table_size: 4096 }
admin: { socket: ${dir}/a.sock }
services:
  - name: mysql
    vip: 10.99.0.100
    port: 3306
    check: none
    backends:
      - { address: 10.99.0.11, name: db1, mac: "02:00:00:00:00:11" }
`,
  );
  const file = path.join(dir, `${instance}.drained.json`);
  const corrupt = '["db1",';
  fs.writeFileSync(file, corrupt, { mode: 0o600 });
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'run', '-c', cfg], { timeout: 20000 }, (err, _stdout, stderr) => {
      resolve({
        code: err
          ? typeof (err as NodeJS.ErrnoException).code === 'number'
            ? Number((err as NodeJS.ErrnoException).code)
            : 1
          : 0,
        stderr,
      });
    });
  });
  assert.notEqual(r.code, 0, 'exits non-zero');
  assert.ok(r.stderr.includes(file), `stderr names the file: ${r.stderr}`);
  assert.match(r.stderr, /fix: .*rm /);
  assert.equal(fs.readFileSync(file, 'utf8'), corrupt, 'the file is kept as it was');
  assert.equal(fs.existsSync(pinDir) && fs.readdirSync(pinDir).length > 0, false, 'nothing pinned');
});

test('the maint file keeps SERVICE/BACKEND targets and its refusal names what it holds', () => {
  const dir = path.join(tmp, `m${n++}`);
  fs.mkdirSync(dir);
  const s = DrainStore.forInstance(dir, 'lab', 'maint');
  assert.equal(s.file, path.join(dir, 'lab.maint.json'));
  s.save(['rw/db1', 'db2']);
  assert.deepEqual([...s.load()], ['db2', 'rw/db1']);
  fs.writeFileSync(s.file, '[1]', { mode: 0o600 });
  const err = refused(() => s.load(), s.file, /not a list of backend names/);
  assert.match(err.message, /^backends in maintenance file /);
});

test('run-time weights round-trip through their file and an out-of-range weight in it is refused', () => {
  const dir = path.join(tmp, `w${n++}`);
  fs.mkdirSync(dir);
  const s = WeightStore.forInstance(dir, 'lab');
  assert.deepEqual([...s.load()], []);
  s.save(
    new Map([
      ['rw/db1', 3],
      ['db2', 0],
    ]),
  );
  assert.equal(fs.statSync(s.file).mode & 0o777, 0o600);
  assert.deepEqual(
    [...s.load()],
    [
      ['db2', 0],
      ['rw/db1', 3],
    ],
  );
  fs.writeFileSync(s.file, '{"db1": 70000}', { mode: 0o600 });
  refused(() => s.load(), s.file, /not an object of backend name -> weight \(an integer from 0 to 65535\)/);
});

test('migrateStateFiles moves each of the four files that is only beside the socket, and leaves one the state directory already has', () => {
  const from = path.join(tmp, `mf${n}`);
  const to = path.join(tmp, `mt${n++}`);
  fs.mkdirSync(from);
  const old = {
    drained: '["db1"]\n',
    maint: '["rw/db2"]\n',
    weights: '{"db3":2}\n',
    'director-drained': '["director"]\n',
  };
  for (const [k, body] of Object.entries(old))
    fs.writeFileSync(path.join(from, `lab.${k}.json`), body, { mode: 0o600 });
  DrainStore.forInstance(to, 'lab', 'maint').save(['db9']);
  const r = migrateStateFiles(from, to, 'lab');
  assert.deepEqual(
    r.moved.map((m) => path.basename(m)),
    ['lab.drained.json', 'lab.weights.json', 'lab.director-drained.json'],
  );
  assert.deepEqual(r.ignored, [`${path.join(from, 'lab.maint.json')} (${path.join(to, 'lab.maint.json')} is used)`]);
  for (const k of ['drained', 'weights', 'director-drained'] as const) {
    assert.equal(fs.readFileSync(path.join(to, `lab.${k}.json`), 'utf8'), old[k]);
    assert.equal(fs.statSync(path.join(to, `lab.${k}.json`)).mode & 0o777, 0o600);
  }
  assert.deepEqual(fs.readdirSync(from), ['lab.maint.json']);
  assert.deepEqual([...DrainStore.forInstance(to, 'lab', 'maint').load()], ['db9']);
  assert.deepEqual(migrateStateFiles(from, to, 'lab').moved, [], 'a second start moves nothing');
});

describe('state_dir: drains, maint and weights outlive /run and a full disk does not refuse a drain', () => {
  const instance = `xtdr${process.pid}`;
  const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
  const cli = (runDir: string, args: string[]) =>
    sh('nsenter', [`--net=/run/netns/${ns}`, process.execPath, BIN, ...args, '--socket', path.join(runDir, 'a.sock')]);
  const status = (runDir: string) => apiCall<DaemonStatus>(path.join(runDir, 'a.sock'), 'GET', '/status');
  let daemon: { child: ChildProcess; log: string[]; exited: Promise<unknown> } | undefined;

  before(() => {
    for (const a of [
      ['netns', 'add', ns],
      ['netns', 'add', `xtdr${process.pid}p`],
      ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `xtdr${process.pid}p`],
      ['-n', ns, 'addr', 'add', '10.99.1.1/24', 'dev', 'eth0'],
      ['-n', ns, 'link', 'set', 'eth0', 'up'],
      ['-n', `xtdr${process.pid}p`, 'link', 'set', 'eth0', 'up'],
    ]) {
      const r = sh('ip', a);
      assert.equal(r.status, 0, `ip ${a.join(' ')}: ${r.stderr}`);
    }
  });

  after(async () => {
    await stop();
    const cfg = path.join(tmp, 'state-run.yaml');
    if (fs.existsSync(cfg))
      sh('nsenter', [`--net=/run/netns/${ns}`, process.execPath, BIN, 'stop', '--detach', '-c', cfg]);
  });

  /** Starts the daemon with its admin socket in runDir and state_dir stateDir; resolves once it answers. */
  async function start(runDir: string, stateDir: string): Promise<void> {
    fs.mkdirSync(runDir, { recursive: true });
    const cfg = path.join(tmp, 'state-run.yaml');
    fs.writeFileSync(
      cfg,
      [
        `instance: ${instance}`,
        'interface: eth0',
        'dataplane: xdp',
        `xdp: { mode: generic, pin_dir: ${pinDir}, ring_size: 1021, flow_table_size: 4096, max_services: 4, max_backends: 16 }`,
        `admin: { socket: ${path.join(runDir, 'a.sock')} }`,
        `state_dir: ${stateDir}`,
        'services:',
        '  - name: mysql',
        '    vip: 10.99.1.100',
        '    port: 3306',
        '    check: none',
        '    backends:',
        '      - { address: 10.99.1.11, name: db1, mac: "02:00:00:00:00:11" }',
        '      - { address: 10.99.1.12, name: db2, mac: "02:00:00:00:00:12" }',
        '',
      ].join('\n'),
    );
    const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, BIN, 'run', '-c', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, XDIRECTOR_LOG_FORMAT: 'json' },
    });
    const log: string[] = [];
    for (const st of [child.stdout!, child.stderr!])
      st.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
    daemon = { child, log, exited: new Promise((r) => child.once('exit', r)) };
    const t0 = Date.now();
    while (
      !(await status(runDir).then(
        () => true,
        () => false,
      ))
    ) {
      assert.ok(
        child.exitCode === null && Date.now() - t0 < 30_000,
        `the daemon did not come up:\n${log.slice(-15).join('\n')}`,
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stop(): Promise<void> {
    if (!daemon) return;
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGTERM');
    await daemon.exited;
    daemon = undefined;
  }

  test('state files beside the admin socket move to state_dir at start, and everything survives a restart whose run directory is new', async () => {
    const run1 = path.join(tmp, 'run1');
    const state = path.join(tmp, 'state');
    fs.mkdirSync(run1);
    fs.writeFileSync(path.join(run1, `${instance}.drained.json`), '["db1"]\n', { mode: 0o600 });
    await start(run1, state);
    assert.deepEqual((await status(run1)).drained, ['db1'], 'the old file is read');
    assert.ok(!fs.existsSync(path.join(run1, `${instance}.drained.json`)), 'moved away from the run directory');
    assert.equal(fs.readFileSync(path.join(state, `${instance}.drained.json`), 'utf8'), '["db1"]\n');
    assert.ok(
      daemon!.log.some((l) => l.includes('state file moved to state_dir')),
      'the move is logged',
    );
    for (const [p, body] of [
      ['/maint', { backend: 'db2' }],
      ['/weight', { backend: 'mysql/db1', weight: 3 }],
    ] as const) {
      assert.doesNotMatch(
        (await apiCall<{ message: string }>(path.join(run1, 'a.sock'), 'POST', p, body)).message,
        /NOT persisted/,
      );
    }
    await stop();
    fs.rmSync(run1, { recursive: true }); // a reboot empties /run
    const run2 = path.join(tmp, 'run2');
    await start(run2, state);
    const st = await status(run2);
    assert.deepEqual(
      [st.drained, st.maint, st.weights.map((w) => [w.target, w.weight])],
      [['db1'], ['db2'], [['mysql/db1', 3]]],
    );
    assert.deepEqual(st.alerts, []);
    await stop();
  });

  test('a drain on a full state_dir is applied with an alert (status, log) that it is not persisted, cleared by the next good write', async () => {
    fs.mkdirSync(fullDir);
    const m = sh('mount', ['-t', 'tmpfs', '-o', 'size=16k,mode=0700', 'tmpfs', fullDir]);
    assert.equal(m.status, 0, m.stderr);
    try {
      fs.writeFileSync(path.join(fullDir, 'fill'), Buffer.alloc(1 << 20));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    const run3 = path.join(tmp, 'run3');
    await start(run3, fullDir);
    const r = cli(run3, ['drain', 'db2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^drained db2 \(in every service\).*; WARNING: drain of db2 is in effect but NOT persisted: .*ENOSPC.*a restart would lose it; fix: free space in /,
    );
    const st = await status(run3);
    assert.deepEqual(st.drained, ['db2']);
    assert.deepEqual(
      st.dataplane.services![0]!.backends.map((b) => [b.name, b.weight]),
      [
        ['db1', 1],
        ['db2', 0],
      ],
      'the drain is in the dataplane',
    );
    assert.equal(st.alerts.length, 1);
    assert.match(st.alerts[0]!, /^ALERT drain of db2 is in effect but NOT persisted/);
    const alertLine = () =>
      daemon!.log
        .map((l) => {
          try {
            return JSON.parse(l) as { alert?: string; level?: string };
          } catch {
            return {};
          }
        })
        .find((o) => o.alert === 'state-not-persisted');
    for (let i = 0; i < 20 && !alertLine(); i++) await new Promise((res) => setTimeout(res, 100)); // the log is written asynchronously
    assert.equal(alertLine()?.level, 'error', `no alert line in the log:\n${daemon!.log.slice(-5).join('\n')}`);
    assert.ok(!fs.existsSync(path.join(fullDir, `${instance}.drained.json`)));
    fs.unlinkSync(path.join(fullDir, 'fill'));
    const again = cli(run3, ['drain', 'db2']);
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /NOT persisted/);
    assert.deepEqual((await status(run3)).alerts, []);
    assert.equal(fs.readFileSync(path.join(fullDir, `${instance}.drained.json`), 'utf8'), '["db2"]\n');
    await stop();
  });
});
