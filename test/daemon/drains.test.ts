// Drained backends on disk (src/daemon/drains.ts): written atomically with mode
// 0600, never through a symlink, and a corrupt or unsafe file stops the daemon
// at start with the path and the fix, the file left as it was.
//
// Files live in a temp directory xtdr<pid>-*, removed in after(). The one daemon
// start (`xdirector run`) is refused before it touches bpffs or an interface; its
// config names an interface that does not exist, so that a daemon that ignored the
// file would fail too (for another reason) instead of attaching anything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { DrainStore, WeightStore } from '../../src/daemon/drains';
import { XdError } from '../../src/errors';
import { BIN } from './harness';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xtdr${process.pid}-`));
const pinDir = `/sys/fs/bpf/xtdr${process.pid}`;
after(() => {
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
  fs.writeFileSync(cfg, `instance: ${instance}
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
`);
  const file = path.join(dir, `${instance}.drained.json`);
  const corrupt = '["db1",';
  fs.writeFileSync(file, corrupt, { mode: 0o600 });
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'run', '-c', cfg], { timeout: 20000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0, stderr });
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
  const s = DrainStore.forInstance(path.join(dir, 'a.sock'), 'lab', 'maint');
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
  const s = WeightStore.forInstance(path.join(dir, 'a.sock'), 'lab');
  assert.deepEqual([...s.load()], []);
  s.save(new Map([['rw/db1', 3], ['db2', 0]]));
  assert.equal(fs.statSync(s.file).mode & 0o777, 0o600);
  assert.deepEqual([...s.load()], [['db2', 0], ['rw/db1', 3]]);
  fs.writeFileSync(s.file, '{"db1": 70000}', { mode: 0o600 });
  refused(() => s.load(), s.file, /not an object of backend name -> weight \(an integer from 0 to 65535\)/);
});
