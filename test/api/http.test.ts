// admin.http: the daemon's HTTP listener in a namespace. The status page is loaded in headless
// Chromium (DOM assertions on --dump-dom, its width measured at 800 px, a screenshot whose path is
// printed), /metrics is read with the Prometheus client's own text parser (node_ipvs_* included),
// the shipped alert rules are checked against it, `xdirector check` is run against the daemon, and
// changes need the token.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { flowTableEntries } from '../../src/bpf/flowtable';
import { startHttpListener } from '../../src/api/http';
import { daemonStatus } from '../lib/status';
import YAML from 'yaml';
import { renderMetrics } from '../../src/daemon/metrics';

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
  const py =
    'import sys,json\nfrom prometheus_client.parser import text_string_to_metric_families as f\nout={}\nfor fam in f(sys.stdin.read()):\n  for s in fam.samples:\n    out.setdefault(s.name,[]).append({"labels":s.labels,"value":s.value})\nprint(json.dumps(out))';
  const r = spawnSync('/usr/bin/python3', ['-c', py], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `prometheus_client refused the exposition: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function chromium(args: string[]): string {
  const r = inNs([
    'chromium',
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    `--user-data-dir=${path.join(tmp, 'chrome')}`,
    ...args,
  ]);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  return r.stdout;
}

describe('HTTP listener with a token (daemon in a namespace)', () => {
  let daemon: ChildProcess;
  let listener: ChildProcess;
  const log: string[] = [];
  const cfg = path.join(tmp, 'c.yaml');

  before(async () => {
    for (const a of [
      ['netns', 'add', ns],
      ['netns', 'add', `${ns}p`],
      ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${ns}p`],
      ['-n', ns, 'link', 'set', 'lo', 'up'],
      ['-n', ns, 'addr', 'add', '10.66.0.1/24', 'dev', 'eth0'],
      ['-n', ns, 'link', 'set', 'eth0', 'up'],
      ['-n', `${ns}p`, 'link', 'set', 'eth0', 'up'],
    ]) {
      const r = sh('ip', a);
      assert.equal(r.status, 0, `ip ${a.join(' ')}: ${r.stderr}`);
    }
    fs.writeFileSync(path.join(tmp, 'token'), TOKEN + '\n', { mode: 0o600 });
    fs.writeFileSync(
      cfg,
      [
        `instance: ${P}`,
        'interface: eth0',
        'dataplane: xdp',
        `state_dir: ${tmp}`,
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
        'vrrp:',
        '  - { name: V, vrid: 9, priority: 150, version: 3, advert_interval: 100ms, vips: [10.66.0.100/32] }',
        '',
      ].join('\n'),
    );
    // "alive" answers TCP on the service port; "dead" has nothing.
    listener = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        process.execPath,
        '-e',
        "require('net').createServer(c=>c.end()).listen(8080,'10.66.0.1')",
      ],
      { stdio: 'ignore' },
    );
    daemon = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, BIN, 'run', '-c', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const s of [daemon.stdout!, daemon.stderr!])
      s.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
    for (let i = 0; ; i++) {
      const r = curl([`${URL0}/status`]);
      if (r.code === 200 && JSON.parse(r.body).vrrp?.[0]?.state === 'MASTER' && JSON.parse(r.body).health?.round > 2)
        break;
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
    assert.match(
      dom,
      /<tr class="backend st-active h-up" data-service="web" data-backend="alive" data-state="active" data-health="up">/,
    );
    assert.match(
      dom,
      /<tr class="backend st-down h-down" data-service="web" data-backend="dead" data-state="down" data-health="down">/,
    );
    assert.match(dom, /<tr class="vrrp" data-instance="V" data-state="MASTER">/);
    assert.match(dom, /class="num rate">\d/, "the page shows the daemon's rates");
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.match(dom, new RegExp(`<span id="version">${pkg.version.replace(/\./g, '\\.')}</span>`));
    // Time in state and the last check's duration per backend; the drained and maintenance lists.
    assert.match(
      dom,
      /data-backend="dead"[^\n]*<td class="num since">\d+(s|m\d\ds)<\/td><td class="health">down<\/td><td class="num check">\d+ ms<\/td>/,
    );
    assert.match(dom, /<ul class="targets" id="drained"><li class="none">none<\/li><\/ul>/);
    assert.match(dom, /<ul class="targets" id="maint"><li class="none">none<\/li><\/ul>/);
    const shot = path.join(os.tmpdir(), `${P}-status.png`);
    chromium(['--window-size=1400,700', `--screenshot=${shot}`, `${URL0}/`]);
    assert.ok(fs.statSync(shot).size > 5000);
    console.log(`status page screenshot: ${shot}`);
  });

  it("fits an 800 px wide window without horizontal scrolling (measured by Chromium's layout)", () => {
    // The page has no script; a copy of it with one that records the document's scroll width is
    // laid out by Chromium at 800 px and the number read back from the dumped DOM.
    const page = curl([`${URL0}/`]).body;
    const probe = path.join(tmp, 'probe.html');
    fs.writeFileSync(
      probe,
      page
        .replace('<meta http-equiv="refresh"', '<meta name="x"')
        .replace(
          '</body>',
          '<script>document.body.dataset.scroll = document.documentElement.scrollWidth + "/" + document.documentElement.clientWidth</script></body>',
        ),
    );
    const widths = (size: string) => {
      const m = /data-scroll="(\d+)\/(\d+)"/.exec(chromium([`--window-size=${size}`, '--dump-dom', `file://${probe}`]));
      assert.ok(m, 'the probe ran');
      return [Number(m[1]), Number(m[2])];
    };
    const [scroll, client] = widths('800,600');
    assert.ok(client <= 800 && client > 700, `viewport ${client} px`);
    assert.ok(scroll <= client, `the page is ${scroll} px wide in an ${client} px viewport`);
    console.log(`status page at 800 px: ${scroll} px wide in a ${client} px viewport`);
  });

  it('exposes metrics the Prometheus text parser accepts, with state as its own gauge and the dataplane, apply, health and VRRP series', () => {
    const r = curl([`${URL0}/metrics`]);
    assert.equal(r.code, 200);
    const m = parseMetrics(r.body);
    assert.deepEqual(
      m.xdirector_backend_weight!.map((s) => Object.keys(s.labels).sort()),
      [
        ['backend', 'service'],
        ['backend', 'service'],
      ],
      'no state label on the weight series',
    );
    const state = (b: string) =>
      m.xdirector_backend_state!.filter((s) => s.labels.backend === b && s.value === 1).map((s) => s.labels.state);
    assert.deepEqual([state('alive'), state('dead')], [['active'], ['down']]);
    assert.equal(
      m.xdirector_backend_state!.length,
      8,
      'one series per backend and possible state (active, draining, down, maint)',
    );
    const info = m.xdirector_dataplane_info![0]!;
    assert.deepEqual(
      [info.labels.kind, info.labels.mode, info.labels.reason, info.value],
      ['xdp', 'generic', 'xdp requested', 1],
    );
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

  it('exposes the monitoring series: build info, process, connections, state history, reloads, VRRP, flow-table fill', () => {
    const r = inNs([process.execPath, BIN, 'reload', '--socket', path.join(tmp, 'admin.sock')]);
    assert.equal(r.status, 0, r.stderr);
    const m = parseMetrics(curl([`${URL0}/metrics`]).body);
    const one = (name: string, labels: Record<string, string> = {}) => {
      const s = m[name]?.filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      assert.equal(s?.length, 1, `${name} ${JSON.stringify(labels)}: ${JSON.stringify(m[name])}`);
      return s![0]!;
    };
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(one('xdirector_build_info').labels, { version: pkg.version, node_version: process.version });
    assert.ok(Math.abs(one('process_start_time_seconds').value - Date.now() / 1000) < 600);
    assert.ok(one('process_resident_memory_bytes').value > 10e6);
    assert.ok(one('process_open_fds').value > 5);
    assert.ok(one('nodejs_heap_size_used_bytes').value > 1e6);
    assert.equal(one('xdirector_backend_new_flows_total', { backend: 'alive' }).value, 0);
    assert.equal(one('xdirector_backend_inactive_flows', { backend: 'alive' }).value, 0);
    // "dead" went down once (its first state was active before its first failed check, or down from the start).
    const since = one('xdirector_backend_state_since_timestamp_seconds', { backend: 'dead' }).value;
    assert.ok(since <= Date.now() / 1000 && since > Date.now() / 1000 - 600, `dead down since ${since}`);
    assert.ok(one('xdirector_backend_state_changes_total', { backend: 'dead' }).value <= 1);
    assert.ok(one('xdirector_health_last_change_timestamp_seconds', { backend: 'dead' }).value > 0);
    assert.equal(one('xdirector_config_reloads_total').value, 1);
    assert.equal(one('xdirector_config_reload_failures_total').value, 0);
    assert.equal(one('xdirector_config_last_reload_successful').value, 1);
    assert.ok(Math.abs(one('xdirector_config_last_reload_timestamp_seconds').value - Date.now() / 1000) < 60);
    assert.equal(one('xdirector_vrrp_state', { instance: 'V', state: 'MASTER' }).value, 1);
    assert.equal(m.xdirector_vrrp_state!.filter((s) => s.value === 1).length, 1, 'one state at a time');
    assert.equal(one('xdirector_vrrp_priority', { instance: 'V' }).value, 150);
    assert.ok(one('xdirector_vrrp_adverts_sent_total', { instance: 'V' }).value > 3);
    // The fill of each flow table against its capacity: flow_table_size 4096 in this config, so
    // the flow4 table (2-way buckets, one bucket per configured flow) has 8192 entries.
    assert.equal(one('xdirector_flow_table_capacity', { table: 'flow4' }).value, flowTableEntries(4096));
    assert.equal(flowTableEntries(4096), 8192);
    assert.equal(one('xdirector_flow_table_entries', { table: 'flow4' }).value, 0);
  });

  it("exposes node_exporter's IPVS series with its names and labels, from the XDP counters", () => {
    const m = parseMetrics(curl([`${URL0}/metrics`]).body);
    const labels = (b: string) => ({
      local_address: '10.66.0.100',
      local_port: '8080',
      remote_address: b,
      remote_port: '8080',
      proto: 'TCP',
      local_mark: '',
    });
    for (const name of [
      'node_ipvs_backend_connections_active',
      'node_ipvs_backend_connections_inactive',
      'node_ipvs_backend_weight',
    ]) {
      assert.deepEqual(
        m[name]!.map((s) => s.labels),
        [labels('10.66.0.1'), labels('10.66.0.11')],
        name,
      );
    }
    assert.deepEqual(
      m.node_ipvs_backend_weight!.map((s) => s.value),
      [1, 0],
      'the effective weight (0: down)',
    );
    for (const name of [
      'node_ipvs_connections_total',
      'node_ipvs_incoming_packets_total',
      'node_ipvs_outgoing_packets_total',
      'node_ipvs_incoming_bytes_total',
      'node_ipvs_outgoing_bytes_total',
    ]) {
      assert.equal(m[name]?.length, 1, name);
      assert.deepEqual(m[name]![0]!.labels, {}, name);
    }
    const types = curl([`${URL0}/metrics`])
      .body.split('\n')
      .filter((l) => l.startsWith('# TYPE node_ipvs_'));
    assert.deepEqual(types.sort(), [
      '# TYPE node_ipvs_backend_connections_active gauge',
      '# TYPE node_ipvs_backend_connections_inactive gauge',
      '# TYPE node_ipvs_backend_weight gauge',
      '# TYPE node_ipvs_connections_total counter',
      '# TYPE node_ipvs_incoming_bytes_total counter',
      '# TYPE node_ipvs_incoming_packets_total counter',
      '# TYPE node_ipvs_outgoing_bytes_total counter',
      '# TYPE node_ipvs_outgoing_packets_total counter',
    ]);
  });

  it('ships alert rules that parse and name only series /metrics exposes (and pass promtool when it is installed)', () => {
    const file = path.join(ROOT, 'scripts/monitoring/xdirector.rules.yml');
    const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as {
      groups: {
        name: string;
        rules: {
          alert: string;
          expr: string;
          for?: string;
          labels: Record<string, string>;
          annotations: Record<string, string>;
        }[];
      }[];
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    const names = rules.map((r) => r.alert);
    for (const want of [
      'XdirectorBackendDown',
      'XdirectorPoolEmpty',
      'XdirectorDataplaneDiverged',
      'XdirectorXdpTxErrors',
      'XdirectorBgpSessionDown',
      'XdirectorVrrpStateChange',
    ])
      assert.ok(names.includes(want), `a rule for ${want}`);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    // What the daemon exposes: this daemon's families, plus the BGP ones (this lab has no bgp
    // section; they come from the same renderer with a BGP status).
    const families = (text: string) =>
      new Set(
        text
          .split('\n')
          .filter((l) => l.startsWith('# TYPE '))
          .map((l) => l.split(' ')[2]!),
      );
    const live = families(curl([`${URL0}/metrics`]).body);
    const bgp = families(
      renderMetrics(
        daemonStatus(
          {
            kind: 'xdp',
            services: [],
            detail: {
              interface: 'eth0',
              mode: 'native',
              programId: 1,
              pinDir: '/x',
              flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 },
            },
          },
          {
            bgp: {
              neighbours: [{ name: 'r', address: '10.0.0.1', state: 'Established', established: true, exported: 1 }],
              announced: [],
              wanted: [],
              withdrawnBecause: {},
              daemon: { running: true, hung: false, restarts: 0 },
              directorDrained: false,
            } as never,
          },
        ),
      ),
    );
    for (const r of rules) {
      assert.ok(
        r.expr && r.labels?.severity && r.annotations?.summary,
        `${r.alert}: expr, labels.severity and annotations.summary`,
      );
      assert.ok(r.for === undefined || /^\d+[smh]$/.test(r.for), `${r.alert}: for ${r.for}`);
      const series = seriesNames(r.expr);
      assert.ok(series.length > 0, `${r.alert}: names a series`);
      for (const s of series)
        assert.ok(
          live.has(s) || (s.startsWith('xdirector_bgp_') && bgp.has(s)),
          `${r.alert}: ${s} is not exposed by /metrics`,
        );
    }
    const promtool = sh('sh', ['-c', 'command -v promtool']).stdout.trim();
    if (promtool) {
      const r = sh(promtool, ['check', 'rules', file]);
      assert.equal(r.status, 0, `promtool check rules: ${r.stdout}${r.stderr}`);
      console.log(`promtool (${promtool}): ${r.stdout.trim().split('\n').pop()}`);
    } else {
      console.log(
        'promtool is not installed (Debian package prometheus): the rules were checked by the YAML parse and the series names only',
      );
    }
  });

  it('xdirector check answers like a monitoring plugin: one line, perfdata, exit 0-3', () => {
    const check = (args: string[]) => {
      const r = inNs([process.execPath, BIN, 'check', ...args]);
      assert.equal(r.stderr, '', 'nothing on stderr');
      const lines = r.stdout.split('\n');
      assert.equal(lines.length, 2, `one line: ${JSON.stringify(r.stdout)}`);
      return { code: r.status, line: lines[0]! };
    };
    const sock = ['--socket', path.join(tmp, 'admin.sock')];
    // "dead" fails its checks: WARNING from one backend down (the default), with the plugin's perfdata.
    const w = check(sock);
    assert.deepEqual(w, {
      code: 1,
      line: 'XDIRECTOR WARNING - 1 backend(s) down: web/dead; 1/1 services up; 1/2 backends active; VRRP V MASTER | services_up=1;;;0;1 backends_up=1;;;0;2 backends_down=1;1;;0;2 alerts=0;;1;0;',
    });
    // Perfdata as the monitoring-plugins guidelines define it: 'label'=value[UOM];[warn];[crit];[min];[max].
    for (const p of w.line.split(' | ')[1]!.split(' '))
      assert.match(p, /^[a-z_]+=\d+(\.\d+)?[a-zA-Z%]*(;[\d.]*){0,4}$/);
    // (Thresholds and the other verdicts: test/cli/check.test.ts, without a process per case.)
    const gone = check(['--socket', path.join(tmp, 'no-such.sock')]);
    assert.equal(gone.code, 2);
    assert.match(gone.line, /^XDIRECTOR CRITICAL - xdirector does not answer on .*no-such\.sock: /);
    const bad = check([...sock, '-w', 'lots']);
    assert.deepEqual(bad, {
      code: 3,
      line: 'XDIRECTOR UNKNOWN - --warning must be a whole number, got "lots" (xdirector check --help)',
    });
  });

  it('refuses drain without the right token and drains with it; the weight series keeps its labels', async () => {
    const before = parseMetrics(curl([`${URL0}/metrics`]).body)
      .xdirector_backend_weight!.map((s) => JSON.stringify(s.labels))
      .sort();
    assert.equal(curl(['-X', 'POST', '-d', '{"backend":"alive"}', `${URL0}/drain`]).code, 401);
    assert.equal(
      curl([
        '-X',
        'POST',
        '-H',
        'Authorization: Bearer wrong-token-wrong-token',
        '-d',
        '{"backend":"alive"}',
        `${URL0}/drain`,
      ]).code,
      401,
    );
    const ok = curl([
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      '-d',
      '{"backend":"alive"}',
      `${URL0}/drain`,
    ]);
    assert.equal(ok.code, 200, ok.body);
    let m = parseMetrics(curl([`${URL0}/metrics`]).body);
    for (
      let i = 0;
      i < 20 &&
      m.xdirector_backend_state!.find((s) => s.labels.backend === 'alive' && s.labels.state === 'draining')!.value !==
        1;
      i++
    ) {
      await sleep(100);
      m = parseMetrics(curl([`${URL0}/metrics`]).body);
    }
    assert.equal(
      m.xdirector_backend_state!.find((s) => s.labels.backend === 'alive' && s.labels.state === 'draining')!.value,
      1,
    );
    assert.deepEqual(m.xdirector_backend_weight!.map((s) => JSON.stringify(s.labels)).sort(), before);
    assert.match(chromium(['--dump-dom', `${URL0}/`]), /data-backend="alive" data-state="draining"/);
    const undo = curl([
      '-X',
      'POST',
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      '-d',
      '{"backend":"alive"}',
      `${URL0}/undrain`,
    ]);
    assert.equal(undo.code, 200, undo.body);
  });

  it('POST /weight with the token sets the run-time weight through the daemon, refuses an out-of-range one and resets', async () => {
    const post = (body: string) =>
      curl(['-X', 'POST', '-H', `Authorization: Bearer ${TOKEN}`, '-d', body, `${URL0}/weight`]);
    const bad = post('{"backend":"web/alive","weight":70000}');
    assert.equal(bad.code, 400, bad.body);
    assert.equal(
      JSON.parse(bad.body).error.message,
      "weight web/alive 70000: a weight must be an integer from 0 to 65535 (the config's weight rule)",
    );
    const ok = post('{"backend":"web/alive","weight":7}');
    assert.equal(ok.code, 200, ok.body);
    assert.match(JSON.parse(ok.body).message, /web\/alive .*7, overriding the config's 1/);
    const st = JSON.parse(curl([`${URL0}/status`]).body);
    assert.deepEqual(st.weights, [{ target: 'web/alive', weight: 7, config: { web: 1 } }]);
    // The page marks the run-time weight (and names the config's in its title).
    assert.match(
      chromium(['--dump-dom', `${URL0}/`]),
      /data-backend="alive"[^\n]*<td class="num weight"><span class="rtw" title="run-time weight 7 \(xdirector weight web\/alive\), config weight 1">7\*<\/span><\/td>/,
    );
    assert.equal(st.dataplane.services[0].backends.find((b: { name: string }) => b.name === 'alive').weight, 7);
    const reset = post('{"backend":"web/alive","weight":null}');
    assert.equal(reset.code, 200, reset.body);
    assert.deepEqual(JSON.parse(curl([`${URL0}/status`]).body).weights, []);
  });
});

/**
 * The series names a PromQL expression reads: label matchers, strings, ranges, grouping clauses
 * and function names removed, then every identifier left that is not a keyword.
 */
function seriesNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b[a-zA-Z_]+\s*\(/g, '(');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring']);
  return [
    ...new Set(
      (e.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((w) => !keywords.has(w) && !/^(e|inf|nan)$/i.test(w)),
    ),
  ];
}

describe('HTTP listener without a token', () => {
  it('is read-only: pages and metrics answer, changes get 403 naming the setting', async () => {
    let drained = 0;
    const l = await startHttpListener(
      { host: '127.0.0.1', port: 0 },
      {
        status: async () =>
          daemonStatus(
            {
              kind: 'xdp',
              services: [],
              detail: {
                interface: 'eth0',
                mode: 'native',
                programId: 1,
                pinDir: '/sys/fs/bpf/x',
                flowCounts: { entries: 0, countedAt: new Date(0).toISOString(), walkMs: 0 },
              },
            },
            { instance: 'x' },
          ),
        metrics: async () => '# HELP a b\n# TYPE a gauge\na 1\n',
        drain: async () => {
          drained++;
          return {};
        },
        undrain: async () => ({}),
        weight: async () => ({}),
      },
      silentLogger(),
    );
    try {
      const base = `http://127.0.0.1:${l.port}`;
      assert.equal((await fetch(`${base}/`)).status, 200);
      assert.equal(await (await fetch(`${base}/metrics`)).text(), '# HELP a b\n# TYPE a gauge\na 1\n');
      const r = await fetch(`${base}/drain`, {
        method: 'POST',
        body: '{"backend":"x"}',
        headers: { authorization: 'Bearer anything-at-all-here' },
      });
      assert.equal(r.status, 403);
      assert.match(((await r.json()) as { error: { message: string } }).error.message, /admin\.http_token_file/);
      assert.equal(drained, 0);
    } finally {
      await l.close();
    }
  });
});
