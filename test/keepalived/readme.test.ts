// README "From keepalived in five lines", run as written on a machine that has never seen
// xdirector: in a private mount namespace whose /etc is an overlay of the real one (what the lines
// create lands in the test's directory) and a private network namespace (realserver setup puts the
// VIP on that namespace's lo). The systemctl the lines call is a recorder on PATH: a test must not
// stop or enable services of the machine it runs on; the calls it got are checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const ROOT = path.resolve(__dirname, '../../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xdrm${process.pid}-`));
after(() => {
  // The overlay was mounted in the child's own mount namespace: gone with it, nothing to unmount here.
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The shell lines of the README's "From keepalived in five lines" block. */
function readmeLines(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /### From keepalived in five lines\n\n```sh\n([^]*?)\n```/.exec(readme);
  assert.ok(m, 'README.md has the "From keepalived in five lines" block');
  return m[1]!.split('\n');
}

test('the README "From keepalived in five lines" works as written on a fresh machine', () => {
  const lines = readmeLines();
  assert.equal(lines.length, 5);
  for (const d of ['upper', 'work', 'bin']) fs.mkdirSync(path.join(tmp, d));
  const bin = path.join(tmp, 'bin');
  fs.writeFileSync(
    path.join(bin, 'xdirector'),
    `#!/bin/sh\nexec ${process.execPath} ${path.join(ROOT, 'bin/xdirector.js')} "$@"\n`,
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${tmp}/systemctl.calls\n`, { mode: 0o755 });
  const script = [
    'set -e',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${tmp}/upper,workdir=${tmp}/work /etc`,
    'rm -rf /etc/xdirector  # a fresh machine (a whiteout in the overlay: the real one is untouched)',
    'mkdir -p /etc/keepalived',
    `cp ${ROOT}/test/fixtures/keepalived/lvs-dr-mysql.conf /etc/keepalived/keepalived.conf`,
    'ip link set lo up',
    ...lines,
    'stat -c %a /etc/xdirector/monitor.pw > $OUT/pw.mode',
    'ip -o addr show dev lo > $OUT/lo.addr',
    'test -f /etc/systemd/system/xdirector.service',
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--net', '--propagation', 'private', 'bash', '-c', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, OUT: tmp },
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /import-keepalived: .*written to \/etc\/xdirector\/xdirector\.yaml/);
  assert.match(r.stdout, /GRANT/);
  assert.match(r.stdout, /^\/etc\/xdirector\/xdirector\.yaml: OK \(instance /m);
  assert.equal(fs.readFileSync(path.join(tmp, 'pw.mode'), 'utf8').trim(), '600');
  assert.match(fs.readFileSync(path.join(tmp, 'lo.addr'), 'utf8'), /inet 10\.0\.0\.100\/32/);
  assert.ok(
    fs.existsSync(path.join(tmp, 'upper/xdirector/xdirector.yaml')),
    'the config landed in the overlay, not the real /etc',
  );
  assert.equal(fs.existsSync('/etc/xdirector/xdirector.yaml'), false);
  assert.deepEqual(fs.readFileSync(path.join(tmp, 'systemctl.calls'), 'utf8').trim().split('\n'), [
    'stop keepalived',
    'daemon-reload',
    'enable --now xdirector',
  ]);
});
