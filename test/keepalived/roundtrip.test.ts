// import-keepalived round trip: a keepalived pair's config (LVS-DR MySQL guide style) is imported
// for one director and run with `xdirector run`; the other director keeps running the real
// keepalived with its own file. They share VRID 51 (VRRPv2, simple password): xdirector (150)
// is Master and forwards MySQL through the VIP to real MariaDB servers, keepalived (100) is
// Backup; a graceful stop hands the VIP to keepalived, a restart takes it back.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { BIN, E2e, type Director } from '../daemon/harness';

function keepalivedMissing(): string | undefined {
  try {
    execFileSync('keepalived', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `requires keepalived (apt-get install keepalived): ${(err as Error).message}`;
  }
}

const e = new E2e({ tag: 'ka', directors: 2, realServers: 2 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let ka: ChildProcess | undefined;
let kaExited: Promise<unknown> | undefined;
const kaLog: string[] = [];

/** The pair's keepalived.conf, as the guides write it: only state, priority and router_id differ. */
function pairConf(o: { routerId: string; state: string; priority: number; notifyOut: string }): string {
  const reals = e.lab.realServers
    .map(
      (h) => `    real_server ${h.ipv4} 3306 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 2
        }
    }`,
    )
    .join('\n');
  return `! keepalived pair for the MySQL VIP
global_defs {
    router_id ${o.routerId}
    vrrp_garp_master_repeat 3
}

vrrp_instance VI_1 {
    state ${o.state}
    interface eth0
    virtual_router_id 51
    priority ${o.priority}
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass xdpair1
    }
    virtual_ipaddress {
        ${e.lab.vip}/32 dev eth0
    }
    notify_master "sh -c 'echo master >> ${o.notifyOut}'"
    notify_backup "sh -c 'echo backup >> ${o.notifyOut}'"
}

virtual_server ${e.lab.vip} 3306 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
${reals}
}
`;
}

async function holdsVip(d: Director): Promise<boolean> {
  const r = await e.lab.run(d.host, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0']);
  return r.stdout.includes(`${e.lab.vip}/32`);
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}\nkeepalived:\n${kaLog.slice(-20).join('\n')}`,
      );
    await sleep(50);
  }
}

const skip = keepalivedMissing();

before(async () => {
  if (skip) return;
  await e.setup();
  const [d1, d2] = e.directors as [Director, Director];
  const oursFile = path.join(e.tmp, 'keepalived-a.conf');
  fs.writeFileSync(
    oursFile,
    pairConf({ routerId: 'DB_LB_A', state: 'MASTER', priority: 150, notifyOut: path.join(e.tmp, 'notify-a.out') }),
  );
  // Import with the real command, then point the test-machine paths (pins, socket, password) at this run.
  const imp = spawnSync(
    process.execPath,
    [BIN, 'import-keepalived', oursFile, '-o', path.join(e.tmp, 'imported.yaml')],
    { encoding: 'utf8' },
  );
  assert.equal(imp.status, 0, imp.stderr);
  const imported = YAML.parse(fs.readFileSync(path.join(e.tmp, 'imported.yaml'), 'utf8'));
  fs.writeFileSync(path.join(e.tmp, 'monitor.pw'), 'monitor\n', { mode: 0o600 });
  const local = e.config(d1, []);
  e.writeConfig(d1, {
    ...imported,
    instance: local.instance,
    dataplane: 'xdp',
    xdp: local.xdp,
    admin: local.admin,
    log: local.log,
    state_dir: local.state_dir,
    monitor: { ...imported.monitor, password_file: path.join(e.tmp, 'monitor.pw') },
  });

  const kaFile = path.join(e.tmp, 'keepalived-b.conf');
  fs.writeFileSync(
    kaFile,
    pairConf({ routerId: 'DB_LB_B', state: 'BACKUP', priority: 100, notifyOut: path.join(e.tmp, 'notify-b.out') }),
  );
  // VRRP only (-P): this kernel has no IPVS for keepalived's checker.
  ka = e.lab.spawn(
    d2.host,
    'keepalived',
    [
      '-n',
      '-l',
      '-D',
      '-P',
      '-f',
      kaFile,
      '-p',
      path.join(e.tmp, 'ka.pid'),
      '-r',
      path.join(e.tmp, 'ka-vrrp.pid'),
      '-c',
      path.join(e.tmp, 'ka-chk.pid'),
    ],
    { mode: 'nsenter', stdio: ['ignore', 'pipe', 'pipe'] } as any,
  );
  kaExited = new Promise((r) => ka!.once('exit', r));
  const onData = (b: Buffer) => kaLog.push(...b.toString('utf8').split('\n').filter(Boolean));
  ka.stdout?.on('data', onData);
  ka.stderr?.on('data', onData);
  await e.startDirector(d1);
  await waitFor('the imported xdirector to hold the VIP', () => holdsVip(d1), 20_000);
  await e.waitResolved(d1);
});

after(async () => {
  if (skip) return;
  if (ka && ka.exitCode === null && ka.signalCode === null) {
    ka.kill('SIGTERM');
    await Promise.race([kaExited, sleep(5000)]);
  }
  await e.teardown();
});

test(
  'the imported config runs as Master beside keepalived as Backup, accepts its adverts and forwards MySQL through the VIP',
  { skip },
  async () => {
    const [d1, d2] = e.directors as [Director, Director];
    await sleep(2500); // two keepalived adverts' worth
    const st = await e.status(d1);
    assert.equal(st.vrrp[0].state, 'MASTER');
    assert.equal(await holdsVip(d2), false, 'keepalived stays Backup');
    assert.ok(
      !kaLog.some((l) => /bad checksum|authentication|invalid|ignoring received advert/i.test(l)),
      `keepalived rejected our adverts:\n${kaLog.join('\n')}`,
    );
    assert.ok(
      kaLog.some((l) => /Entering BACKUP STATE/i.test(l)),
      kaLog.join('\n'),
    );
    assert.deepEqual(
      st.health.backends.map((b: any) => b.up),
      [true, true],
      'the MySQL checks (check: mysql from TCP_CHECK on 3306) log in and pass',
    );
    const r = await e.lab.runClient({ connections: 40, concurrency: 4 });
    assert.equal(r.failed, 0, JSON.stringify(r.failures));
    assert.equal(Object.keys(r.byServerId).length, 2, 'both real servers take connections');
    assert.match(
      fs.readFileSync(path.join(e.tmp, 'notify-a.out'), 'utf8'),
      /master/,
      'the translated notify_master ran',
    );
  },
);

test(
  'a graceful stop hands the VIP to keepalived at once, and the restarted import preempts it back',
  { skip },
  async () => {
    const [d1, d2] = e.directors as [Director, Director];
    await e.stopDirector(d1, 'SIGTERM');
    const took = await waitFor('keepalived to take the VIP', () => holdsVip(d2), 5000);
    assert.ok(took < 3000, `keepalived took ${took} ms after priority 0 (its skew time is under 1 s)`);
    assert.equal(await holdsVip(d1), false);
    await e.startDirector(d1);
    await waitFor('the imported xdirector to take the VIP back', () => holdsVip(d1), 15_000);
    await waitFor('keepalived to release the VIP', async () => !(await holdsVip(d2)), 5000);
  },
);
