// Issue 20 item 10: one daemon per instance, and no director drain reported that BIRD did not
// confirm. A real XDP director in the lab's namespaces with BGP on (its BIRD peers with an
// address nobody answers on: the session stays down, which is all these tests need; no real
// server runs MariaDB, the service has check: none).
// - A second `xdirector run` of the running instance is refused at once (exit 1, the running
//   pid named) with nothing touched: same program id, same BIRD pid, BIRD's control socket and
//   config file untouched and answering.
// - `drain --director` with BIRD's control socket gone fails (exit 1) and says so, instead of
//   reporting a withdrawal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { E2e, svc, BIN } from './harness';
import { birdCommand } from '../../src/bgp/control';

const e = new E2e({ tag: 'lk', realServers: 1, mariadb: false });
let d: (typeof e.directors)[number];

before(async () => {
  await e.setup();
  d = e.directors[0]!;
  const r1 = e.lab.realServers[0]!;
  e.writeConfig(
    d,
    e.config(d, [svc('mysql', e.lab.vip, [{ address: r1.ipv4, name: r1.name }])], {
      // 10.77.0.1 is no host of the lab: BIRD keeps trying to connect, nothing else happens.
      bgp: {
        local_as: 65001,
        router_id: d.host.ipv4,
        hold_time: '3s',
        neighbours: [{ address: '10.77.0.1', as: 65000, name: 'rt' }],
      },
    }),
  );
  await e.startDirector(d);
  await e.waitResolved(d);
});

after(async () => {
  await e.teardown();
});

test('a second run of a running instance exits 1 at once naming the running pid, and changes nothing', async () => {
  const st = await e.status(d);
  const programId = st.dataplane.detail.programId;
  const bird = st.bgp.daemon;
  assert.equal(typeof programId, 'number');
  assert.equal(typeof bird.pid, 'number');
  const birdConf = path.join(path.dirname(bird.socket), `${st.instance}.bird.conf`);
  const sockIno = fs.statSync(bird.socket).ino;
  const confMtime = fs.statSync(birdConf).mtimeMs;
  const logLines = d.log.length;

  const t0 = performance.now();
  const r = await e.lab.run(d.host, process.execPath, [BIN, 'run', '-c', d.configFile], {
    mode: 'nsenter',
    allowFail: true,
    timeoutMs: 30000,
  } as any);
  const took = performance.now() - t0;
  assert.equal(r.code, 1, `exit 1, got ${r.code}: ${r.stderr}`);
  assert.match(
    r.stderr,
    new RegExp(
      `instance ${st.instance} is already running \\(pid ${st.pid}, config ${d.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
    ),
  );
  assert.match(r.stderr, /nothing was changed: stop it first \(xdirector stop -c /);
  // Refused before BIRD, XDP or the admin socket were touched: no waiting on any of them.
  assert.ok(took < 5000, `refused in ${Math.round(took)} ms`);
  assert.doesNotMatch(r.stdout + r.stderr, /XDP program|bird running|admin socket/);

  const after = await e.status(d);
  assert.equal(after.pid, st.pid);
  assert.equal(after.dataplane.detail.programId, programId, 'the XDP program was not reloaded');
  assert.equal(after.dataplane.detail.mode, st.dataplane.detail.mode, 'still attached');
  assert.equal(after.bgp.daemon.pid, bird.pid, 'no second BIRD replaced the first');
  assert.equal(after.bgp.daemon.restarts, 0);
  assert.equal(fs.statSync(bird.socket).ino, sockIno, "BIRD's control socket is the same file");
  assert.equal(fs.statSync(birdConf).mtimeMs, confMtime, "BIRD's config was not rewritten");
  const hello = await birdCommand(bird.socket, 'show status');
  assert.equal(hello.error, false);
  // The running daemon still drives its BIRD: a director drain is confirmed by it, and undone.
  assert.match((await e.cli(d, ['drain', '--director'])).stdout, /^director drained: withdrew /);
  assert.match((await e.cli(d, ['undrain', '--director'])).stdout, /^director undrained/);
  assert.equal(
    d.log.slice(logLines).filter((l) => /error/i.test(l) && /bird/i.test(l)).length,
    0,
    "no BIRD error in the running daemon's log",
  );
});

test("drain --director fails with the reason when BIRD's control socket is unreachable, and reports no withdrawal", async () => {
  const st = await e.status(d);
  // What a second BIRD used to do to the first one's socket: the file is gone, BIRD runs on.
  fs.rmSync(st.bgp.daemon.socket, { force: true });
  const r = await e.cli(d, ['drain', '--director'], true);
  assert.equal(r.code, 1, `exit 1, got ${r.code}: ${r.stdout}`);
  assert.doesNotMatch(r.stdout + r.stderr, /withdrew/);
  assert.match(r.stderr, /drain --director: bird did not confirm it: bird control socket .*ENOENT/);
  assert.ok(r.stderr.includes(`control socket ${st.bgp.daemon.socket}`), r.stderr);
  assert.match(
    r.stderr,
    /the drain is saved \(.*director-drained\.json\) and applied by the next sync that reaches bird; until then the routers may still send new flows here/,
  );
});
