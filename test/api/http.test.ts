// admin.http: the daemon's HTTP listener in a namespace. The status page is loaded in headless
// Chromium (DOM assertions on --dump-dom, a screenshot whose path is printed), /metrics is read
// with the Prometheus client's own text parser, and changes need the token.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { startHttpListener } from '../../src/api/http';
import { daemonStatus } from '../lib/status';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/xdirector.js');
const P = `xtht${process.pid % 100000}`;
const ns = `${P}n`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
const TOKEN = 'a-test-token-0123456789abcdef';
const URL0 = 'http://127.0.0.1:9105';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
const inNs = (args: string[]) => sh('nsenter', [`--net=/run/netns/${ns}`, ...args]);

function curl(args: string[]): { code: number; body: string } {
  const r = inNs(['curl', '-s', '-o', '-', '-w', '\n%{http_code}', ...args]);
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

/** Metric families through prometheus_client's parser: {name: [{labels, value}]}. */
function parseMetrics(text: string): Record<string, { labels: Record<string, string>; value: number }[]> {
  const py = 'import sys,json\nfrom prometheus_client.parser import text_string_to_metric_families as f\nout={}\nfor fam in f(sys.stdin.read()):\n  for s in fam.samples:\n    out.setdefault(s.name,[]).append({"labels":s.labels,"value":s.value})\nprint(json.dumps(out))';
  const r = spawnSync('/usr/bin/python3', ['-c', py], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `prometheus_client refused the exposition: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function chromium(args: string[]): string {
  const r = inNs(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--user-data-dir=${path.join(tmp, 'chrome')}`, ...args]);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  return r.stdout;
}

describe('HTTP listener with a token (daemon in a namespace)', () => {
  let daemon: ChildProcess;
  let listener: ChildProcess;
  const log: string[] = [];
  const cfg = path.join(tmp, 'c.yaml');

  before(async () => {
    for (const a of [['netns', 'add', ns], ['netns', 'add', `${ns}p`], ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${ns}p`], ['-n', ns, 'link', 'set', 'lo', 'up'], ['-n', ns, 'addr', 'add', '10.66.0.1/24', 'dev', 'eth0'], ['-n', ns, 'link', 'set', 'eth0', 'up'], ['-n', `${ns}p`, 'link', 'set', 'eth0', 'up']]) {
      const r = sh('ip', a);
      assert.equal(r.status, 0, `ip ${a.join(' ')}: ${r.stderr}`);
    }
    fs.writeFileSync(path.join(tmp, 'token'), TOKEN + '\n', { mode: 0o600 });
    fs.writeFileSync(cfg, [
      `instance: ${P}`, 'interface: eth0', 'dataplane: xdp', `state_dir: ${tmp}`,
      `xdp: { mode: generic, pin_dir: /sys/fs/bpf/${P}, ring_size: 1021, flow_table_size: 4096, max_services: 4, max_backends: 16 }`,
      `admin: { socket: ${path.join(tmp, 'admin.sock')}, http: "127.0.0.1:9105", http_token_file: ${path.join(tmp, 'token')} }`,
      'health: { interval: 200ms, timeout: 100ms, rise: 1, fall: 1 }',
      'services:',
      '  - name: web',
      '    vip: 10.66.0.100',
      '    port: 8080',
      '    check: tcp',
      '    backends:',
      '      - { address: 10.66.0.1, name: alive, mac: "02:00:00:00:00:01" }',
      '      - { address: 10.66.0.11, name: dead, mac: "02:00:00:00:00:11" }',
      'vrrp:', '  - { name: V, vrid: 9, priority: 150, version: 3, advert_interval: 100ms, vips: [10.66.0.100/32] }', '',
    ].join('\n'));
    // "alive" answers TCP on the service port; "dead" has nothing.
    listener = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e', "require('net').createServer(c=>c.end()).listen(8080,'10.66.0.1')"], { stdio: 'ignore' });
    daemon = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, BIN, 'run', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [daemon.stdout!, daemon.stderr!]) s.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
    for (let i = 0; ; i++) {
      const r = curl([`${URL0}/status`]);
      if (r.code === 200 && JSON.parse(r.body).vrrp?.[0]?.state === 'MASTER' && JSON.parse(r.body).health?.round > 2) break;
      if (i > 150 || daemon.exitCode !== null) throw new Error(`daemon not serving: ${log.slice(-10).join('\n')}`);
      await sleep(200);
    }
  });

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
    }
    listener?.kill('SIGKILL');
    inNs([process.execPath, BIN, 'stop', '--detach', '-c', cfg]);
    for (const n of [ns, `${ns}p`]) sh('ip', ['netns', 'del', n]);
    fs.rmSync(`/sys/fs/bpf/${P}`, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves a status page Chromium renders with services, backends, state, health, VRRP role and auto-refresh', async () => {
    // The rates are the daemon's estimator's: there once it has two counter samples (2 s apart).
    for (let i = 0; JSON.parse(curl([`${URL0}/status`]).body).rates === null; i++) {
      assert.ok(i < 50, 'the daemon reports rates within 5 s');
      await sleep(100);
    }
    const dom = chromium(['--dump-dom', `${URL0}/`]);
    assert.match(dom, /<meta http-equiv="refresh" content="5">/);
    assert.match(dom, /<b id="dataplane">xdp<\/b> \(interface eth0, mode generic/);
    assert.match(dom, /<tr class="service" data-service="web">/);
    assert.match(dom, /<tr class="backend st-active h-up" data-service="web" data-backend="alive" data-state="active" data-health="up">/);
    assert.match(dom, /<tr class="backend st-down h-down" data-service="web" data-backend="dead" data-state="down" data-health="down">/);
    assert.match(dom, /<tr class="vrrp" data-instance="V" data-state="MASTER">/);
    assert.match(dom, /class="num rate">\d/, 'the page shows the daemon\'s rates');
    const shot = path.join(os.tmpdir(), `${P}-status.png`);
    chromium(['--window-size=1400,700', `--screenshot=${shot}`, `${URL0}/`]);
    assert.ok(fs.statSync(shot).size > 5000);
    console.log(`status page screenshot: ${shot}`);
  });

  it('exposes metrics the Prometheus text parser accepts, with state as its own gauge and the dataplane, apply, health and VRRP series', () => {
    const r = curl([`${URL0}/metrics`]);
    assert.equal(r.code, 200);
    const m = parseMetrics(r.body);
    assert.deepEqual(m.xdirector_backend_weight!.map((s) => Object.keys(s.labels).sort()), [['backend', 'service'], ['backend', 'service']], 'no state label on the weight series');
    const state = (b: string) => m.xdirector_backend_state!.filter((s) => s.labels.backend === b && s.value === 1).map((s) => s.labels.state);
    assert.deepEqual([state('alive'), state('dead')], [['active'], ['down']]);
    assert.equal(m.xdirector_backend_state!.length, 8, 'one series per backend and possible state (active, draining, down, maint)');
    const info = m.xdirector_dataplane_info![0]!;
    assert.deepEqual([info.labels.kind, info.labels.mode, info.labels.reason, info.value], ['xdp', 'generic', 'xdp requested', 1]);
    assert.equal(m.xdirector_last_apply_success![0]!.value, 1);
    assert.ok(Math.abs(m.xdirector_last_apply_timestamp_seconds![0]!.value - Date.now() / 1000) < 600);
    const byB = (name: string, b: string) => m[name]!.find((s) => s.labels.backend === b)!.value;
    assert.ok(byB('xdirector_health_checks_total', 'dead') >= 3);
    assert.equal(byB('xdirector_health_check_failures_total', 'dead'), byB('xdirector_health_checks_total', 'dead'));
    assert.equal(byB('xdirector_health_check_failures_total', 'alive'), 0);
    assert.ok(byB('xdirector_health_check_seconds_total', 'alive') > 0);
    assert.ok(m.xdirector_vrrp_transitions_total![0]!.value >= 1);
    assert.ok('xdirector_health_writer_changes_total' in m);
  });

  it('refuses drain without the right token and drains with it; the weight series keeps its labels', async () => {
    const before = parseMetrics(curl([`${URL0}/metrics`]).body).xdirector_backend_weight!.map((s) => JSON.stringify(s.labels)).sort();
    assert.equal(curl(['-X', 'POST', '-d', '{"backend":"alive"}', `${URL0}/drain`]).code, 401);
    assert.equal(curl(['-X', 'POST', '-H', 'Authorization: Bearer wrong-token-wrong-token', '-d', '{"backend":"alive"}', `${URL0}/drain`]).code, 401);
    const ok = curl(['-X', 'POST', '-H', `Authorization: Bearer ${TOKEN}`, '-d', '{"backend":"alive"}', `${URL0}/drain`]);
    assert.equal(ok.code, 200, ok.body);
    let m = parseMetrics(curl([`${URL0}/metrics`]).body);
    for (let i = 0; i < 20 && m.xdirector_backend_state!.find((s) => s.labels.backend === 'alive' && s.labels.state === 'draining')!.value !== 1; i++) {
      await sleep(100);
      m = parseMetrics(curl([`${URL0}/metrics`]).body);
    }
    assert.equal(m.xdirector_backend_state!.find((s) => s.labels.backend === 'alive' && s.labels.state === 'draining')!.value, 1);
    assert.deepEqual(m.xdirector_backend_weight!.map((s) => JSON.stringify(s.labels)).sort(), before);
    assert.match(chromium(['--dump-dom', `${URL0}/`]), /data-backend="alive" data-state="draining"/);
    const undo = curl(['-X', 'POST', '-H', `Authorization: Bearer ${TOKEN}`, '-d', '{"backend":"alive"}', `${URL0}/undrain`]);
    assert.equal(undo.code, 200, undo.body);
  });

  it('POST /weight with the token sets the run-time weight through the daemon, refuses an out-of-range one and resets', async () => {
    const post = (body: string) => curl(['-X', 'POST', '-H', `Authorization: Bearer ${TOKEN}`, '-d', body, `${URL0}/weight`]);
    const bad = post('{"backend":"web/alive","weight":70000}');
    assert.equal(bad.code, 400, bad.body);
    assert.equal(JSON.parse(bad.body).error.message, 'weight web/alive 70000: a weight must be an integer from 0 to 65535 (the config\'s weight rule)');
    const ok = post('{"backend":"web/alive","weight":7}');
    assert.equal(ok.code, 200, ok.body);
    assert.match(JSON.parse(ok.body).message, /web\/alive .*7, overriding the config's 1/);
    const st = JSON.parse(curl([`${URL0}/status`]).body);
    assert.deepEqual(st.weights, [{ target: 'web/alive', weight: 7, config: { web: 1 } }]);
    assert.equal(st.dataplane.services[0].backends.find((b: { name: string }) => b.name === 'alive').weight, 7);
    const reset = post('{"backend":"web/alive","weight":null}');
    assert.equal(reset.code, 200, reset.body);
    assert.deepEqual(JSON.parse(curl([`${URL0}/status`]).body).weights, []);
  });
});

describe('HTTP listener without a token', () => {
  it('is read-only: pages and metrics answer, changes get 403 naming the setting', async () => {
    let drained = 0;
    const l = await startHttpListener({ host: '127.0.0.1', port: 0 }, {
      status: async () => daemonStatus({ kind: 'xdp', services: [], detail: { interface: 'eth0', mode: 'native', programId: 1, pinDir: '/sys/fs/bpf/x', flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 } } }, { instance: 'x' }),
      metrics: async () => '# HELP a b\n# TYPE a gauge\na 1\n',
      drain: async () => { drained++; return {}; },
      undrain: async () => ({}),
      weight: async () => ({}),
    }, silentLogger());
    try {
      const base = `http://127.0.0.1:${l.port}`;
      assert.equal((await fetch(`${base}/`)).status, 200);
      assert.equal(await (await fetch(`${base}/metrics`)).text(), '# HELP a b\n# TYPE a gauge\na 1\n');
      const r = await fetch(`${base}/drain`, { method: 'POST', body: '{"backend":"x"}', headers: { authorization: 'Bearer anything-at-all-here' } });
      assert.equal(r.status, 403);
      assert.match(((await r.json()) as { error: { message: string } }).error.message, /admin\.http_token_file/);
      assert.equal(drained, 0);
    } finally {
      await l.close();
    }
  });
});
