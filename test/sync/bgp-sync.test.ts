// Connection sync behind ECMP: the BGP fabric of test/bgp (a BIRD router with multipath, three
// xdirectors announcing the VIP, three MariaDB servers, DR), an `rr` service, sync in a full mesh.
// 50 long-lived sessions write every 100 ms; a fourth director joins (ECMP moves a share of the
// open flows to it at once) and one dies (SIGKILL + link down): 0 broken, and every session's
// acknowledged rows are on its backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Fabric, Sessions, type SessionRow, type Director } from '../bgp/fabric';
import { sleep } from '../../scripts/lab/exec';

const SESSIONS = 50;
const f = new Fabric('bs');
let ds: Director[] = [];
let sessions: Sessions | undefined;
let atStart: SessionRow[] = [];

function config(d: Director): Record<string, unknown> {
  const c = f.config(d) as { services: Record<string, unknown>[] } & Record<string, unknown>;
  c.services[0]!.scheduler = 'rr';
  // XD_TEST_SYNC_OFF=1: the control run without sync.
  if (!process.env.XD_TEST_SYNC_OFF)
    c.sync = {
      source: d.ip,
      peers: ds.filter((x) => x !== d).map((x) => x.ip),
      key_file: path.join(f.tmp, 'sync.key'),
    };
  return c;
}

before(async () => {
  await f.setup();
  fs.writeFileSync(path.join(f.tmp, 'sync.key'), 'q'.repeat(48), { mode: 0o600 });
  ds = [
    await f.addDirector(1, true),
    await f.addDirector(2, true),
    await f.addDirector(3, true),
    await f.addDirector(4, true),
  ];
  await f.startRouter(ds.map((d) => ({ n: d.n, bfd: d.bfd })));
  await Promise.all(ds.slice(0, 3).map((d) => f.startDirector(d, config(d))));
  await f.waitNexthops((h) => ds.slice(0, 3).every((d) => h.includes(d.ip)), 15_000, 'three next hops');
});

after(async () => {
  sessions?.kill();
  await f.teardown();
});

test(`rr behind ECMP with sync: ${SESSIONS} sessions survive a fourth director joining and one dying`, async () => {
  const r = await Sessions.start(f, SESSIONS, 100);
  sessions = r.s;
  atStart = r.ready;
  assert.equal(atStart.length, SESSIONS);
  await sleep(500);
  const [d1, , , d4] = ds;
  await f.startDirector(d4!, config(d4!));
  await f.waitNexthops((h) => h.includes(d4!.ip), 15_000, `${d4!.ip} announced`);
  await sleep(1500);
  const st4 = await f.status(d4!);
  await f.killDirector(d1!);
  await f.waitNexthops((h) => !h.includes(d1!.ip), 10_000, `${d1!.ip} withdrawn`);
  await sleep(2000);
  const now = await sessions.stop();
  sessions = undefined;
  const broken = now.filter((s) => s.error || s.serverId !== atStart.find((x) => x.id === s.id)!.serverId);
  process.stdout.write(
    `# ECMP${process.env.XD_TEST_SYNC_OFF ? ' without sync (control)' : ' with sync'}: ${broken.length} of ${SESSIONS} rr sessions broken after a join and a death; d4 installed ${st4.sync?.received.installed ?? 0} flows at its start; longest gap ${Math.max(...now.map((s) => s.maxGapMs))} ms\n`,
  );
  assert.deepEqual(
    broken.map((s) => `${s.id}: ${s.error ?? 'moved'}`),
    [],
  );
  const rows = await f.ackedRows();
  for (const s of now) {
    const have = rows.get(`${s.serverId}/${s.id}`) ?? 0;
    assert.ok(have >= s.acked, `session ${s.id}: ${s.acked} acknowledged writes, ${have} rows on server ${s.serverId}`);
  }
});
