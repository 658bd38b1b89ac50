// check: script (keepalived's MISC_CHECK): the operator's own check script, run as an unprivileged
// user against a real MariaDB with the mariadb client, feeding rise/fall, misc_dynamic weights and
// the desired state; and check-config refusing scripts and users that are unsafe to run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MariaDB } from '../../scripts/lab/mariadb';
import { parseConfig } from '../../src/config/load';
import { lookupUser } from '../../src/config/script';
import { HealthMonitor } from '../../src/health/monitor';
import { runCommand } from '../../src/vrrp/exec';
import { healthInputsChanged } from '../../src/daemon/reload';
import { desiredState } from '../../src/desired';
import { XdError } from '../../src/errors';
import { healthInputs, type TestService } from '../lib/config';
import { captureLog, until } from './cluster';

const PREFIX = `xdsc${process.pid}`;
const PASSWORD = `Xd-Scr1pt-${process.pid}`;
/** An unprivileged user every Debian system has; the check scripts run as it. */
const USER = 'nobody';
let dir: string;
let db: MariaDB;
const monitors: HealthMonitor[] = [];

/** A root-owned executable script in the test's (world-traversable, root-owned) directory. */
function script(name: string, body: string, mode = 0o755): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode });
  fs.chmodSync(f, mode);
  return f;
}

before(async () => {
  assert.ok(lookupUser(USER), `the test needs the unprivileged user ${USER} (getent passwd ${USER} found none)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
  fs.chmodSync(dir, 0o755); // the script user must reach the scripts
  // The check's credentials, in a client defaults file the script user can read (as an operator would keep them).
  fs.writeFileSync(path.join(dir, 'my.cnf'), `[client]\nuser=monitor\npassword=${PASSWORD}\n`, { mode: 0o644 });
  db = new MariaDB({ prefix: PREFIX, name: 'db1', serverId: 1, monitorPassword: PASSWORD });
  await db.start();
  await db.query(
    "CREATE DATABASE xdcheck; CREATE TABLE xdcheck.weight (w INT NOT NULL); INSERT INTO xdcheck.weight VALUES (5); GRANT SELECT ON xdcheck.* TO 'monitor'@'%'",
  );
  // The kind of script keepalived users run from MISC_CHECK: address and port as arguments, the
  // mariadb client, exit 0 up / 1 down; the dynamic one exits 2 + the weight it read.
  script(
    'check_mysql.sh',
    [
      '[ "$(id -u)" = 0 ] && { echo "running as root"; exit 1; }',
      `out=$(mariadb --defaults-extra-file=${dir}/my.cnf --connect-timeout=1 -h "$1" -P "$2" -N -B -e 'SELECT 1' 2>&1) || { echo "$out"; exit 1; }`,
      'exit 0',
    ].join('\n'),
  );
  script(
    'check_weight.sh',
    [
      `w=$(mariadb --defaults-extra-file=${dir}/my.cnf --connect-timeout=1 -h "$XDIRECTOR_BACKEND_ADDRESS" -P "$XDIRECTOR_BACKEND_PORT" -N -B -e 'SELECT w FROM xdcheck.weight' 2>&1) || { echo "$w"; exit 1; }`,
      'exit $((2 + w))',
    ].join('\n'),
  );
  script('hang.sh', 'sleep 30 &\necho "sleeping as $!"\nwait');
});

after(async () => {
  for (const m of monitors) await m.stop();
  await db?.destroy();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function monitor(check_script: TestService['check_script']) {
  const inputs = healthInputs({
    services: [
      {
        name: 'db',
        check: 'script',
        check_script: { user: USER, ...check_script! },
        backends: [{ address: '127.0.0.1', port: db.port, name: 'db1' }],
      },
    ],
    health: { interval: 200, timeout: 150, rise: 1, fall: 2 },
  });
  const hm = new HealthMonitor({ ...inputs, log: captureLog().log });
  monitors.push(hm);
  const backend = () =>
    desiredState({ services: inputs.services, health: hm.snapshot(), drained: new Set(), macs: new Map() }).state
      .services[0]!.backends[0]!;
  return { hm, backend };
}

test('a script check with the mariadb client brings the backend up as the script user, takes it down when MariaDB stops (after fall) and back after rise', async () => {
  const { hm, backend } = monitor({ command: `${dir}/check_mysql.sh` });
  hm.start();
  try {
    await until(hm, (s) => s.backends[0]!.up, 5000, 'up');
    assert.equal(backend().state, 'active');
    await db.stop();
    await until(hm, (s) => !s.backends[0]!.up, 5000, 'down');
    assert.equal(backend().state, 'down');
    assert.match(
      hm.snapshot().backends[0]!.lastError!,
      /check script .*check_mysql\.sh exited with status 1: .*Can't connect/,
    );
    await db.start();
    await until(hm, (s) => s.backends[0]!.up, 10_000, 'up again');
  } finally {
    await hm.stop();
  }
});

test('misc_dynamic: exit 2+N sets the backend weight to N, weight 0 drains it, exit 1 takes it down', async () => {
  const { hm, backend } = monitor({ command: `${dir}/check_weight.sh`, dynamic: true });
  hm.start();
  try {
    await until(hm, (s) => s.backends[0]!.up && s.backends[0]!.scriptWeight === 5, 5000, 'up with weight 5');
    assert.deepEqual([backend().state, backend().weight], ['active', 5]);
    await db.query('UPDATE xdcheck.weight SET w = 0');
    await until(hm, (s) => s.backends[0]!.scriptWeight === 0, 5000, 'weight 0');
    assert.deepEqual([backend().state, backend().weight, hm.snapshot().backends[0]!.up], ['draining', 0, true]);
    await db.query('UPDATE xdcheck.weight SET w = -1'); // exit 1
    await until(hm, (s) => !s.backends[0]!.up, 5000, 'down on exit 1');
    assert.equal(backend().state, 'down');
  } finally {
    await hm.stop();
    await db.query('UPDATE xdcheck.weight SET w = 5');
  }
});

test('without dynamic, an exit status of 2 or more is a failure', async () => {
  const { hm } = monitor({ command: `${dir}/check_weight.sh` });
  hm.start();
  try {
    await until(hm, (s) => s.backends[0]!.checks >= 2, 5000, 'two checks');
    const b = hm.snapshot().backends[0]!;
    assert.equal(b.up, false);
    assert.match(b.lastError!, /exited with status 7/);
  } finally {
    await hm.stop();
  }
});

test('a script still running at its timeout is killed with the processes it started and counts as a failure', async () => {
  const { hm } = monitor({ command: `${dir}/hang.sh {address}`, timeout: '100ms' });
  hm.start();
  try {
    await until(hm, (s) => s.backends[0]!.checks >= 1, 5000, 'one check');
    const m = /hang\.sh still running after 100 ms: killed: sleeping as (\d+)$/.exec(
      hm.snapshot().backends[0]!.lastError!,
    );
    assert.ok(m, hm.snapshot().backends[0]!.lastError!);
    const pid = Number(m[1]);
    // The grandchild (sleep) was in the script's process group: gone too.
    // Gone, or a zombie until PID 1 reaps the orphan.
    const running = (): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    let alive = running();
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((r) => setTimeout(r, 20));
      alive = running();
    }
    assert.equal(alive, false, `sleep ${pid} outlived the killed check script`);
  } finally {
    await hm.stop();
  }
});

function problems(cs: Record<string, unknown>, top: Record<string, unknown> = {}): string {
  const text = JSON.stringify({
    instance: 't',
    interface: 'lo',
    ...top,
    services: [
      {
        name: 's',
        vip: '10.9.0.1',
        port: 3306,
        check: 'script',
        check_script: cs,
        backends: [{ address: '10.9.0.2' }],
      },
    ],
  });
  try {
    parseConfig(text, 'x.yaml', { checkFiles: true });
  } catch (e) {
    assert.ok(e instanceof XdError, String(e));
    return e.message;
  }
  return '';
}

test('check-config refuses a missing, non-executable or writable-by-others script, an unknown or root user, and no user, each with its fix', () => {
  const ok = script('ok.sh', 'exit 0');
  assert.equal(problems({ command: `${ok} --x`, user: USER }), '');
  assert.match(
    problems({ command: `${dir}/nope.sh`, user: USER }),
    /check_script\.command: .*nope\.sh does not exist: install the script there or fix the path/,
  );
  assert.match(
    problems({ command: script('noexec.sh', 'exit 0', 0o644), user: USER }),
    /noexec\.sh is not executable \(mode 0644\): chmod 755 /,
  );
  assert.match(
    problems({ command: script('ww.sh', 'exit 0', 0o757), user: USER }),
    /ww\.sh is writable by every user \(mode 0757\): .*chmod o-w/,
  );
  const open = path.join(dir, 'open');
  fs.mkdirSync(open, { mode: 0o777 });
  fs.chmodSync(open, 0o777);
  fs.writeFileSync(path.join(open, 'c.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  assert.match(
    problems({ command: `${open}/c.sh`, user: USER }),
    /c\.sh is in .*open, which every user can write \(mode 0777\): .*move the script to a root-owned directory/,
  );
  assert.match(
    problems({ command: ok, user: `xdno${process.pid}` }),
    /user xdno\d+ does not exist: create it \(useradd --system/,
  );
  assert.match(problems({ command: ok, user: 'root' }), /user root is root \(uid 0\)/);
  assert.match(problems({ command: ok }), /check_script\.user: is required \(or set script_user\)/);
  assert.equal(problems({ command: ok }, { script_user: USER }), '');
  assert.match(problems({ command: 'check.sh {address}', user: USER }), /must start with the script's absolute path/);
  assert.match(
    problems({ command: ok, user: USER, timeout: '5s' }),
    /timeout: \(5000 ms\) must not exceed health\.interval \(1000 ms\)/,
  );
});

test('script_user: VRRP track and notify commands run as it, and every VRRP instance carries it', async () => {
  const ids = lookupUser(USER)!;
  assert.equal((await runCommand(`test "$(id -u):$(id -g)" = "${ids.uid}:${ids.gid}"`, [], 2000, ids)).ok, true);
  assert.equal(
    (await runCommand(`test "$(id -u)" = "${ids.uid}"`, [], 2000)).ok,
    ids.uid === process.getuid!(),
    'without script_user the command runs as the daemon',
  );
  const cfg = parseConfig(
    JSON.stringify({
      instance: 't',
      interface: 'lo',
      script_user: USER,
      vrrp: [{ name: 'V', vrid: 9, vips: ['10.9.0.1'] }],
      services: [{ name: 's', vip: '10.9.0.1', port: 80, check: 'none', backends: [] }],
    }),
    'v.yaml',
  );
  assert.equal(cfg.vrrp[0]!.scriptUser, USER);
});

test('a reload that changes a check script, its timeout, user or dynamic setting rebuilds the health monitor', () => {
  const cfg = (cs: Record<string, unknown>) =>
    parseConfig(
      JSON.stringify({
        instance: 't',
        interface: 'lo',
        script_user: USER,
        services: [
          {
            name: 's',
            vip: '10.9.0.1',
            port: 80,
            check: 'script',
            check_script: cs,
            backends: [{ address: '10.9.0.2' }],
          },
        ],
      }),
      'r.yaml',
    );
  const base = cfg({ command: '/bin/true' });
  assert.equal(healthInputsChanged(base, cfg({ command: '/bin/true' })), false);
  for (const cs of [
    { command: '/bin/false' },
    { command: '/bin/true', timeout: '200ms' },
    { command: '/bin/true', dynamic: true },
    { command: '/bin/true', user: 'root' },
  ]) {
    assert.equal(healthInputsChanged(base, cfg(cs)), true, JSON.stringify(cs));
  }
});
