// Interop with a real keepalived (Debian's package) in the same VRID on one L2
// segment: xdirector Master with keepalived Backup and the reverse, VRRPv2
// (with simple-password auth) and VRRPv3, multicast and unicast, failover both
// ways (Master lost → the other side takes over; Master back → it preempts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ADDR, VIP6, VrrpLab, keepalivedConf, oursYaml, sleep, type AddrWatch, type Running } from './lab';

const START_TIMEOUT = 25_000;
const SLACK = 300;

function keepalivedAvailable(): string | undefined {
  try {
    execFileSync('keepalived', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `requires keepalived (apt-get install keepalived): ${(err as Error).message}`;
  }
}

interface Scenario {
  title: string;
  version: 2 | 3;
  unicast: boolean;
  /** Who is Master (priority 150); the other side has 100. */
  master: 'ours' | 'keepalived';
  /** How the Master is lost. */
  loss: 'SIGKILL' | 'SIGTERM';
  v6?: boolean;
}

const scenarios: Scenario[] = [
  {
    title: 'VRRPv2 multicast with a simple password, xdirector Master / keepalived Backup',
    version: 2,
    unicast: false,
    master: 'ours',
    loss: 'SIGTERM',
  },
  {
    title: 'VRRPv3 multicast, keepalived Master / xdirector Backup',
    version: 3,
    unicast: false,
    master: 'keepalived',
    loss: 'SIGKILL',
  },
  {
    title: 'VRRPv3 unicast, xdirector Master / keepalived Backup',
    version: 3,
    unicast: true,
    master: 'ours',
    loss: 'SIGKILL',
  },
  {
    title: 'VRRPv2 unicast, keepalived Master / xdirector Backup',
    version: 2,
    unicast: true,
    master: 'keepalived',
    loss: 'SIGTERM',
  },
  {
    title: 'VRRPv3 IPv6 multicast, xdirector Master / keepalived Backup',
    version: 3,
    unicast: false,
    master: 'ours',
    loss: 'SIGKILL',
    v6: true,
  },
];

describe(
  'VRRP interop with keepalived (namespaces, real kernel)',
  { timeout: 240_000, skip: keepalivedAvailable() },
  () => {
    const lab = new VrrpLab();
    let wa: AddrWatch; // ours always runs in A
    let wb: AddrWatch; // keepalived always runs in B
    let wa6: AddrWatch;
    let wb6: AddrWatch;

    before(async () => {
      lab.setup();
      wa = lab.watch('a');
      wb = lab.watch('b');
      wa6 = lab.watch('a', VIP6);
      wb6 = lab.watch('b', VIP6);
      await sleep(100);
    });

    after(async () => {
      await lab.close();
    });

    for (const sc of scenarios) {
      it(`${sc.title}: elects the Master, fails over on ${sc.loss} and preempts back`, async () => {
        const interval = sc.version === 2 ? 1000 : 100;
        const password = sc.version === 2 ? 'xdsecret' : undefined;
        const oursPrio = sc.master === 'ours' ? 150 : 100;
        const kaPrio = sc.master === 'ours' ? 100 : 150;
        const ours = () =>
          lab.startOurs(
            'a',
            oursYaml({
              priority: oursPrio,
              version: sc.version,
              interval: `${interval}ms`,
              password,
              v6only: sc.v6,
              ...(sc.unicast ? { unicastSrc: ADDR.a, peers: [ADDR.b] } : {}),
            }),
          );
        const ka = () =>
          lab.startKeepalived(
            'b',
            keepalivedConf({
              id: `${lab.id}kb`,
              priority: kaPrio,
              version: sc.version,
              interval: String(interval / 1000),
              password,
              v6: sc.v6,
              ...(sc.unicast ? { unicastSrc: ADDR.b, peers: [ADDR.a] } : {}),
            }),
          );
        // Backup side's Master_Down_Interval (priority 100).
        const masterDown = 3 * interval + ((256 - 100) * interval) / 256;

        const [oa, ob] = sc.v6 ? [wa6, wb6] : [wa, wb];
        const vip = sc.v6 ? VIP6 : undefined;
        const [mw, bw] = sc.master === 'ours' ? [oa, ob] : [ob, oa];
        const dropped = (st: { counters: { dropped: Record<string, number> } }) => {
          const d = st.counters.dropped;
          return (
            (d.checksum ?? 0) + (d.auth ?? 0) + (d.ttl ?? 0) + (d.version ?? 0) + (d.interval ?? 0) + (d.peer ?? 0)
          );
        };

        // The Master side starts first and is Master before the Backup side exists. Started
        // together, the election depends on which process starts faster: a Backup started 0.2 s
        // later than its peer (keepalived's Master_Down_Interval at priority 100 is 3.61 s, ours at
        // 150 is 3.41 s) never advertises at all, so nothing about its adverts could be asserted.
        let o: Running | undefined;
        let k: Running | undefined;
        try {
          if (sc.master === 'ours') {
            o = ours();
            await lab.started(o, START_TIMEOUT);
            await mw.until(true, START_TIMEOUT);
            k = ka();
          } else {
            k = ka();
            await mw.until(true, START_TIMEOUT);
            o = ours();
            await lab.started(o, START_TIMEOUT);
          }
          // The Backup side hears the Master's adverts and stays Backup: it holds no VIP over several
          // of its own Master_Down_Intervals (had it rejected them, it would have taken the VIP).
          await sleep(masterDown + 2 * interval);
          assert.deepEqual(
            lab.holders(vip),
            [sc.master === 'ours' ? 'a' : 'b'],
            'the priority-150 side holds the VIP alone',
          );
          assert.ok(
            !k.lines.some((l) => /ignoring received advert|bad checksum|invalid|authentication/i.test(l)),
            `keepalived rejected our adverts:\n${k.lines.join('\n')}`,
          );
          // keepalived as Backup under our adverts never timed out waiting for a Master.
          if (sc.master === 'ours')
            assert.ok(
              !k.lines.some((l) => /Receive advertisement timeout|Entering MASTER STATE/.test(l)),
              `keepalived did not hear our adverts:\n${k.lines.join('\n')}`,
            );
          let st = (await lab.status(o))[0];
          assert.equal(st.state, sc.master === 'ours' ? 'MASTER' : 'BACKUP');
          assert.equal(dropped(st), 0, JSON.stringify(st.counters));
          // A Backup always hears the Master; keepalived as Backup sends nothing, so this is checked
          // below, after keepalived has been Master, for the scenarios where ours is Master.
          if (sc.master === 'keepalived')
            assert.ok(st.counters.accepted >= 2, `keepalived's adverts were accepted: ${JSON.stringify(st.counters)}`);

          // Lose the Master.
          const tLoss = performance.now();
          const victim = sc.master === 'ours' ? o : k;
          if (sc.loss === 'SIGKILL') await lab.kill(victim);
          else victim.proc.kill('SIGTERM');
          const tTake = await bw.until(true, 3 * masterDown + 5000);
          const took = tTake - tLoss;
          const limit = sc.loss === 'SIGKILL' ? masterDown : 3 * interval; // graceful: skew time only
          assert.ok(
            took <= limit + SLACK,
            `takeover after ${sc.loss} took ${took.toFixed(0)} ms (limit ${limit.toFixed(0)} ms + ${SLACK})`,
          );
          await victim.exited;

          // The Master comes back and preempts; the other side releases the VIP.
          if (sc.master === 'ours') o = ours();
          else k = ka();
          await mw.until(true, START_TIMEOUT);
          await bw.until(false, 5000);
          await sleep(2 * interval);
          assert.deepEqual(lab.holders(vip), [sc.master === 'ours' ? 'a' : 'b']);
          st = (await lab.status(o))[0];
          assert.equal(st.state, sc.master === 'ours' ? 'MASTER' : 'BACKUP');
          assert.equal(dropped(st), 0, JSON.stringify(st.counters));
          // Ours came back as Backup under keepalived as Master and heard it (adverts every interval
          // for a whole Master_Down_Interval) before it preempted.
          assert.ok(st.counters.accepted >= 2, `keepalived's adverts were accepted: ${JSON.stringify(st.counters)}`);
          // One takeover each: ours took over from keepalived, or (restarted) preempted it.
          assert.equal(st.counters.becameMaster, 1, JSON.stringify(st.counters));
        } catch (err) {
          (err as Error).message +=
            `\n--- xdirector (a) ---\n${o?.lines.join('\n')}\n--- keepalived (b) ---\n${k?.lines.join('\n')}`;
          throw err;
        } finally {
          // Whatever happened, neither side outlives its scenario: a leftover Master on VRID 51 would
          // fail the next scenario (a failed first scenario used to fail the VRRPv2 unicast one too).
          if (o) await lab.stop(o);
          if (k) await lab.stop(k);
          await oa.until(false, 5000);
          await ob.until(false, 5000);
        }
      });
    }
  },
);
