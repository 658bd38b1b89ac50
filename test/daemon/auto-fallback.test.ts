// dataplane: auto falling back to IPVS detaches the XDP program a previous run
// pinned for this instance (it would keep forwarding with frozen health ahead of
// IPVS) and says so; a foreign program is never touched.
//
// The XDP side is real: a veth xaf<pid>a (peer xaf<pid>b in namespace xaf<pid>),
// pins under /sys/fs/bpf/xaf<pid>, all removed in after(). This kernel has no
// IPVS, so the IPVS dataplane is a stand-in that records what it is asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { xdp } from '../../src/bpf';
import { loadConfig } from '../../src/config';
import { openDataplane } from '../../src/dataplane/select';
import { XdpDataplane, instancePinDir } from '../../src/dataplane/xdp/dataplane';
import type { Dataplane } from '../../src/state/types';

const PREFIX = `xaf${process.pid}`;
const IF = `${PREFIX}a`;
const PIN = `/sys/fs/bpf/${PREFIX}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });

before(() => {
  if (!fs.existsSync('/sys/fs/bpf')) sh('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  sh('ip', ['netns', 'add', PREFIX]);
  sh('ip', ['link', 'add', IF, 'type', 'veth', 'peer', 'name', `${PREFIX}b`, 'netns', PREFIX]);
  sh('ip', ['link', 'set', IF, 'up']);
  fs.mkdirSync(PIN);
});

after(() => {
  try {
    XdpDataplane.detachInstance(PIN, PREFIX, IF, pino({ level: 'silent' }));
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['link', 'del', IF]);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['netns', 'del', PREFIX]);
  } catch {
    /* gone */
  }
  fs.rmSync(PIN, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

function config(maxBackends: number): ReturnType<typeof loadConfig> {
  const f = path.join(tmp, `c${maxBackends}.yaml`);
  fs.writeFileSync(
    f,
    `instance: ${PREFIX}
interface: ${IF}
dataplane: auto
xdp: { mode: generic, pin_dir: ${PIN}, ring_size: 251, max_services: 4, max_backends: ${maxBackends}, flow_table_size: 1024 }
admin: { socket: ${tmp}/a.sock }
state_dir: ${tmp}
services:
  - name: mysql
    vip: 10.204.0.100
    port: 3306
    check: none
    ring: maglev
    backends:
      - { address: 10.204.0.11, mac: "02:00:00:00:04:11" }
`,
  );
  return loadConfig(f);
}

const lines: string[] = [];
const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
const fakeIpvs: Dataplane = {
  kind: 'ipvs',
  apply: async () => undefined,
  status: async () => ({ kind: 'ipvs', detail: {}, services: [] }),
  close: async () => undefined,
} as unknown as Dataplane;

test('auto falling back to IPVS after a limits mismatch detaches the pinned XDP program of the previous run and says so', async () => {
  const { XdpDataplane: X } = await import('../../src/dataplane/xdp/dataplane');
  // A previous run: loaded with max_backends 16, stopped keeping its program attached.
  const prev = await openDataplane(config(16), log, 'xdp');
  const prevId = (prev as XdpDataplane).programId;
  await prev.close({ keepState: true });
  assert.equal(xdp.query(IF).programs.generic, prevId, 'the previous program stays attached');
  // This run asks for max_backends 32: XDP refuses to adopt (XD_ERR_LAYOUT_MISMATCH), auto falls back.
  lines.length = 0;
  const dp = await openDataplane(
    config(32),
    log,
    'auto',
    {},
    {
      xdp: (c, l) =>
        X.open({
          instance: c.instance,
          ifname: c.interface,
          mode: c.xdp.mode,
          pinDir: c.xdp.pinDir,
          ringMax: c.xdp.ringSize,
          maxServices: c.xdp.maxServices,
          maxBackends: c.xdp.maxBackends,
          flowTableSize: c.xdp.flowTableSize,
          log: l,
        }),
      ipvs: async () => fakeIpvs,
    },
  );
  assert.equal(dp.kind, 'ipvs');
  const q = xdp.query(IF);
  assert.deepEqual([q.programs.native, q.programs.generic], [0, 0], 'no XDP program left on the interface');
  assert.equal(fs.existsSync(instancePinDir(PIN, PREFIX)), false, 'its pins are removed');
  const warn = lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .find((l) => /fell back to IPVS: detached the XDP program/.test(l.msg));
  assert.ok(warn && warn.level === 40, `a warning says what was detached: ${lines.join('')}`);
});
