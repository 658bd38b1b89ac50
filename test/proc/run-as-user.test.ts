// src/proc/run-as-user.ts: one way to run an operator's command (check scripts, VRRP track
// scripts and notify hooks). Real processes: the user it runs as, its environment, its exit,
// and at the timeout the kill of its whole process group, what it started included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { lookupUser } from '../../src/config/script';
import { killProcessGroup, minimalEnv, runAsUser } from '../../src/proc/run-as-user';

const USER = 'nobody';

/** Running, and not a zombie waiting for PID 1 to reap it. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && running(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !running(pid);
}

test('a command runs as the user given, in /, with exactly the environment given', async () => {
  const ids = lookupUser(USER);
  assert.ok(ids, `the test needs the unprivileged user ${USER} (getent passwd ${USER} found none)`);
  const r = await runAsUser({
    argv: ['/bin/sh', '-c', 'echo "$(id -u) $(id -g) $(pwd)"; env | sort'],
    as: ids,
    env: minimalEnv({ XDIRECTOR_BACKEND_PORT: '3306' }),
    timeoutMs: 5000,
    keepOutput: 4096,
  });
  assert.equal(r.code, 0, r.output);
  const [who, ...env] = r.output.trim().split('\n');
  assert.equal(who, `${ids.uid} ${ids.gid} /`);
  // sh adds PWD (and SHLVL, _ in some shells); nothing of this process's environment is there.
  const names = env.map((l) => l.slice(0, l.indexOf('='))).filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n));
  assert.deepEqual(names, ['HOME', 'LANG', 'PATH', 'XDIRECTOR_BACKEND_PORT']);
});

test('without a user or an environment it runs as this process, with its environment', async () => {
  process.env.XDIRECTOR_TEST_INHERITED = 'yes';
  try {
    const r = await runAsUser({
      argv: ['/bin/sh', '-c', 'echo "$(id -u) $XDIRECTOR_TEST_INHERITED"'],
      timeoutMs: 5000,
      keepOutput: 100,
    });
    assert.equal(r.output.trim(), `${process.getuid!()} yes`);
  } finally {
    delete process.env.XDIRECTOR_TEST_INHERITED;
  }
});

test('the exit status and a killing signal are reported, and only the output tail is kept', async () => {
  const exit = await runAsUser({ argv: ['/bin/sh', '-c', 'echo 0123456789; exit 7'], timeoutMs: 5000, keepOutput: 4 });
  assert.deepEqual(exit, { code: 7, signal: null, timedOut: false, output: '789\n' });
  const killed = await runAsUser({ argv: ['/bin/sh', '-c', 'kill -TERM $$'], timeoutMs: 5000 });
  assert.deepEqual(killed, { code: null, signal: 'SIGTERM', timedOut: false, output: '' });
});

test('a command that cannot start is an outcome with the reason, not a rejection', async () => {
  const r = await runAsUser({ argv: ['/nonexistent/xdirector-test-script'], timeoutMs: 5000 });
  assert.equal(r.code, null);
  assert.equal(r.timedOut, false);
  assert.match(r.error?.message ?? '', /ENOENT/);
});

test('at the timeout the whole process group is killed, what the command started in the background too', async () => {
  const t0 = performance.now();
  // The shell starts a sleep in the background, says its pid and waits: both must die.
  const r = await runAsUser({
    argv: ['/bin/sh', '-c', 'sleep 30 & echo $!; wait'],
    timeoutMs: 200,
    keepOutput: 100,
  });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(performance.now() - t0 < 5000, 'the timeout did not end the run');
  const pid = Number(r.output.trim());
  assert.ok(pid > 0, `no pid in ${JSON.stringify(r.output)}`);
  assert.equal(await gone(pid), true, `the background sleep ${pid} outlived the killed command`);
});

test('killProcessGroup kills a child that leads no process group of its own', async () => {
  // Not detached: the child is in this process's group, which must not be signalled; the child alone is.
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
  await new Promise((r) => child.once('spawn', r));
  killProcessGroup(child);
  assert.equal(await exited, 'SIGKILL');
});
