// BIRD config rendering and control-socket reply parsing (pure), plus BIRD's own parser
// accepting what we render (`bird -p`, no network).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseConfig } from '../../src/config';
import { renderBirdConfig, vipProtocol, parseReplies, parseProtocols } from '../../src/bgp';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), `xdbgp-bird-${process.pid}-`));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

const CFG = parseConfig(
  `instance: lab
interface: eth0
services:
  - { name: rw, vip: 10.77.0.100, port: 3306, check: none, backends: [] }
  - { name: v6, vip: "fd77::100", port: 3306, check: none, backends: [] }
bgp:
  local_as: 65001
  router_id: 10.77.0.2
  neighbours:
    - { address: 10.77.0.1, as: 65000, bfd: true, hold_time: 3s, name: tor1 }
    - { address: "fd77::1", as: 65000 }
  announce:
    - { vip: 10.77.0.100, med: 10, communities: ["65000:100"] }
    - { vip: "fd77::100" }
`,
  'lab.yaml',
).bgp!;

test('each VIP is a static protocol created disabled with its /32 or /128, MED and communities', () => {
  const text = renderBirdConfig(CFG);
  assert.match(
    text,
    /protocol static vip4_10_77_0_100 \{\n {2}disabled;\n {2}ipv4;\n {2}route 10\.77\.0\.100\/32 blackhole \{ bgp_med = 10; bgp_community\.add\(\(65000,100\)\); \};\n\}/,
  );
  assert.match(
    text,
    /protocol static vip6_fd77__100 \{\n {2}disabled;\n {2}ipv6;\n {2}route fd77::100\/128 blackhole;\n\}/,
  );
  assert.equal(vipProtocol('fd77::100'), 'vip6_fd77__100');
});

test('a neighbour session exports only the static VIP routes of its family, imports nothing, with its timers and BFD', () => {
  const text = renderBirdConfig(CFG);
  const tor1 = /protocol bgp peer_tor1 \{[^}]*\}[^}]*\}/.exec(text)![0];
  assert.match(tor1, /local as 65001;\n {2}neighbor 10\.77\.0\.1 as 65000;\n {2}hold time 3;\n {2}keepalive time 1;/);
  assert.match(tor1, /bfd on;/);
  assert.match(tor1, /ipv4 \{ import none; export where source = RTS_STATIC; \};/);
  assert.doesNotMatch(tor1, /ipv6/);
  const peer2 = /protocol bgp peer_peer2 \{[^}]*\}[^}]*\}/.exec(text)![0];
  assert.match(peer2, /ipv6 \{ import none; export where source = RTS_STATIC; \};/);
  assert.doesNotMatch(peer2, /bfd on/);
  assert.match(
    text,
    /protocol bfd xd_bfd \{\n {2}interface "\*" \{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; \};/,
  );
});

test("no kernel protocol is rendered: BIRD puts nothing in the director's kernel (the VIP's only route there is the daemon's local one, vip-routes.ts)", () => {
  assert.doesNotMatch(renderBirdConfig(CFG), /protocol kernel/);
});

test('a TCP MD5 password goes into its neighbour only', () => {
  const text = renderBirdConfig(CFG, { passwords: new Map([['tor1', 'k3y']]) });
  assert.equal(text.match(/password "k3y";/g)?.length, 1);
  assert.match(/protocol bgp peer_tor1 \{[^}]*\}/.exec(text)![0], /password "k3y";/);
});

test("a password BIRD cannot carry is refused when rendering, not stripped (a stripped key would stop matching the router's)", () => {
  for (const pw of ['se"cret', 'se\\cret']) {
    assert.throws(
      () => renderBirdConfig(CFG, { passwords: new Map([['tor1', pw]]) }),
      (e: Error & { code?: string }) =>
        e.code === 'XD_ERR_BGP' && /bgp neighbour tor1: the TCP MD5 password contains a double quote/.test(e.message),
    );
  }
});

test('BIRD 2 parses the rendered config', () => {
  const file = path.join(TMP, 'bird.conf');
  fs.writeFileSync(file, renderBirdConfig(CFG, { passwords: new Map([['tor1', 'k3y']]) }));
  execFileSync('bird', ['-p', '-c', file], { stdio: 'pipe' });
});

test('replies split on the final line; continuation lines keep the previous code; a partial reply waits', () => {
  const r1 = parseReplies('0001 BIRD 2.0.12 ready.\n0009-vip4_x: disabled\n0000 \n1002-a');
  assert.deepEqual(
    r1.replies.map((r) => [r.code, r.error, r.lines.length]),
    [
      [1, false, 1],
      [0, false, 2],
    ],
  );
  assert.equal(r1.rest, '1002-a');
  const r2 = parseReplies('1000-BIRD 2.0.12\n1011-Router ID is 10.99.0.2\n Hostname is vm\n');
  assert.equal(r2.replies.length, 0);
  assert.deepEqual(
    r2.pending.map((l) => l.code),
    [1000, 1011, 1011],
  );
  const r3 = parseReplies('0013 Daemon is up and running\n', r2.pending);
  assert.equal(r3.replies[0]!.lines.length, 4);
});

test('8xxx and 9xxx replies are errors', () => {
  const r = parseReplies('9001 syntax error, unexpected CF_SYM_UNDEFINED\n8003 No protocols match\n');
  assert.deepEqual(
    r.replies.map((x) => x.error),
    [true, true],
  );
});

// Captured from BIRD 2.0.12 `show protocols all` over the control socket.
const SHOW = `2002-Name       Proto      Table      State  Since         Info
1002-device1    Device     ---        up     14:59:40.018  
1006-
1002-vip4_10_99_0_100 Static     master4    up     14:59:42.024  
1006-  Channel ipv4
     State:          UP
     Routes:         1 imported, 0 exported, 1 preferred
 
1002-vip4_10_99_0_101 Static     master4    down   14:59:40.018  
1006-
1002-peer_tor1  BGP        ---        up     14:59:44.670  Established   
1006-  BGP state:          Established
     Neighbor address: 10.99.0.1
     Neighbor AS:      65000
     Local AS:         65001
     Hold timer:       1.420/3
   Channel ipv4
     State:          UP
     Routes:         0 imported, 1 exported, 0 preferred
     BGP Next hop:   10.99.0.2
 
1002-peer_peer2 BGP        ---        start  2026-12-03 09:01:02  Active        Socket: Connection refused
1006-  BGP state:          Active
    Neighbor address: fd77::1%eth0
    Neighbor AS:      65000
    Last error:       Socket: Connection refused
 
0000 
`;

test('show protocols all gives each protocol its state, BGP state, neighbour, exported routes and last error', () => {
  const { replies } = parseReplies(SHOW);
  const p = parseProtocols(replies[0]!);
  assert.deepEqual(
    p.map((x) => [x.name, x.proto, x.state]),
    [
      ['device1', 'Device', 'up'],
      ['vip4_10_99_0_100', 'Static', 'up'],
      ['vip4_10_99_0_101', 'Static', 'down'],
      ['peer_tor1', 'BGP', 'up'],
      ['peer_peer2', 'BGP', 'start'],
    ],
  );
  const tor1 = p[3]!;
  assert.equal(tor1.bgpState, 'Established');
  assert.equal(tor1.neighborAddress, '10.99.0.1');
  assert.equal(tor1.neighborAs, 65000);
  assert.equal(tor1.exported, 1);
  assert.equal(tor1.since, '14:59:44.670');
  const p2 = p[4]!;
  assert.equal(p2.since, '2026-12-03 09:01:02');
  assert.equal(p2.info, 'Active Socket: Connection refused');
  assert.equal(p2.neighborAddress, 'fd77::1');
  assert.equal(p2.lastError, 'Socket: Connection refused');
  assert.equal(p[1]!.imported, 1);
});
