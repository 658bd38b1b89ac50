// Pin directories are made and removed without trusting what is in them (src/bpf/pins.ts): the
// daemon runs as root, and a symlink planted in a pin directory must never make start, stop
// --detach or a layout change delete its target. Also: pin directories are created 0700, and a pin
// path with a directory another user owns or can write, or a symlinked directory, is refused.
//
// Resources (prefix xpn<pid>): a veth pair xpn<pid> / xpn<pid>p in this namespace (generic XDP), pins
// under /sys/fs/bpf/xpn<pid>, link targets in a temp directory. All are removed in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { openPinnedXdMap, xdp } from '../../../src/bpf';
import { XdpDataplane, instancePinDir, type XdpOptions } from '../../../src/dataplane/xdp/dataplane';
import { XdError } from '../../../src/errors';

const PREFIX = `xpn${process.pid}`;
const IF = PREFIX;
const BASE = `/sys/fs/bpf/${PREFIX}`;
const OBJ = path.resolve(__dirname, '../../../bpf/xdirector.bpf.o');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
const log = pino({ level: 'silent' });

function opts(pinDir: string): XdpOptions {
  return {
    instance: 'i1',
    ifname: IF,
    mode: 'generic',
    pinDir,
    ringMax: 251,
    maxServices: 4,
    maxBackends: 16,
    flowTableSize: 1024,
    objectPath: OBJ,
    log,
  };
}

/** Files outside bpffs that a planted link points at: one file, one directory with a file in it. */
function targets(name: string): { file: string; dir: string; inner: string } {
  const dir = path.join(tmp, `${name}-dir`);
  fs.mkdirSync(dir);
  const inner = path.join(dir, 'precious');
  fs.writeFileSync(inner, 'x');
  const file = path.join(tmp, `${name}-file`);
  fs.writeFileSync(file, 'x');
  return { file, dir, inner };
}

function plant(dir: string, t: { file: string; dir: string }): void {
  fs.symlinkSync(t.file, path.join(dir, 'link-to-file'));
  fs.symlinkSync(t.dir, path.join(dir, 'link-to-dir'));
}

function intact(t: { file: string; dir: string; inner: string }): void {
  assert.ok(fs.existsSync(t.file), `${t.file} was deleted`);
  assert.ok(fs.existsSync(t.inner), `${t.inner} was deleted through the link`);
}

async function refused(p: Promise<unknown> | (() => unknown), re: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof XdError, `expected an XdError, got ${String(err)}`);
    assert.equal(err.code, 'XD_ERR_PIN_DIR_UNSAFE', err.message);
    assert.match(err.message, re);
    assert.match(err.message, /fix: /);
    return;
  }
  assert.fail('expected XD_ERR_PIN_DIR_UNSAFE');
}

const attached = () => xdp.query(IF).programs.generic;

before(() => {
  execFileSync('ip', ['link', 'add', IF, 'type', 'veth', 'peer', 'name', `${IF}p`]);
  execFileSync('ip', ['link', 'set', IF, 'up']);
});

after(() => {
  try {
    execFileSync('ip', ['link', 'del', IF]);
  } catch {
    /* gone */
  }
  // rmSync removes links, it does not follow them.
  fs.rmSync(BASE, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('start creates the pin directories 0700, stop --detach removes them', async () => {
  const pinDir = path.join(BASE, 'fresh');
  const dp = await XdpDataplane.open(opts(pinDir));
  for (const d of [BASE, pinDir, instancePinDir(pinDir, 'i1')]) assert.equal(fs.statSync(d).mode & 0o777, 0o700, d);
  await dp.close({ keepState: false });
  assert.ok(!fs.existsSync(instancePinDir(pinDir, 'i1')));
  assert.equal(attached(), 0);
});

test('start over a pre-made pin directory holding symlinks refuses and deletes nothing through them', async () => {
  const pinDir = path.join(BASE, 'planted');
  const dir = instancePinDir(pinDir, 'i1');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const t = targets('start');
  plant(dir, t);
  await refused(XdpDataplane.open(opts(pinDir)), new RegExp(`${dir}/link-to-(file|dir) -> ${tmp}`));
  intact(t);
  assert.equal(attached(), 0, 'nothing attached');
  // stop --detach without a daemon (xdirector stop --detach -c FILE)
  await refused(() => XdpDataplane.detachInstance(pinDir, 'i1', IF, log), /holds a symlink/);
  intact(t);
});

test('a layout change and stop --detach of a running instance refuse a planted symlink and delete nothing through it', async () => {
  const pinDir = path.join(BASE, 'layout');
  const dir = instancePinDir(pinDir, 'i1');
  const dp = await XdpDataplane.open(opts(pinDir));
  const t = targets('detach');
  plant(dir, t);
  await refused(dp.close({ keepState: false }), /holds a symlink/);
  intact(t);
  assert.equal(attached(), dp.programId, 'refused before anything was detached');
  // The pinned instance now claims another layout: start replaces it, which removes the directory.
  const meta = openPinnedXdMap(dir, 'meta');
  try {
    meta.update(0, { ...meta.lookup(0)!, layout_version: 9999 });
  } finally {
    meta.close();
  }
  await refused(XdpDataplane.open(opts(pinDir)), /holds a symlink/);
  intact(t);
  assert.equal(attached(), dp.programId, 'the running instance was not detached');
  for (const l of ['link-to-file', 'link-to-dir']) fs.unlinkSync(path.join(dir, l));
  await dp.close({ keepState: false });
  assert.ok(!fs.existsSync(dir));
  assert.equal(attached(), 0);
});

test('a pin path with a directory another user owns, one group or other can write, or a symlinked directory is refused', async () => {
  const owned = path.join(BASE, 'owned');
  fs.mkdirSync(owned, { mode: 0o700 });
  fs.chownSync(owned, 65534, 65534);
  await refused(XdpDataplane.open(opts(owned)), /is owned by uid 65534/);
  const open = path.join(BASE, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  await refused(XdpDataplane.open(opts(open)), /is writable by group \(mode 0777\)/);
  const linked = path.join(BASE, 'linked');
  fs.symlinkSync(tmp, linked);
  await refused(XdpDataplane.open(opts(linked)), /is a symlink/);
  assert.deepEqual(fs.readdirSync(owned).concat(fs.readdirSync(open)), [], 'nothing pinned in a refused directory');
  assert.ok(!fs.readdirSync(tmp).includes('i1'), 'nothing made through the link');
  assert.equal(attached(), 0);
});
