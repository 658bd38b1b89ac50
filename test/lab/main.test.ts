// The lab main command's pure parts: the config it gives the daemon (validated
// by the real config loader) and its command-line errors; the client's too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { Lab } from '../../scripts/lab/topology';
import { buildConfig, generateConfig, labState, parseMainArgs } from '../../scripts/lab/main';
import { parseArgs as parseClientArgs } from '../../scripts/lab/client';
import { loadConfig } from '../../src/config';
import { XdError } from '../../src/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xdfc${process.pid}-`));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// A Lab object describes the topology without building it (no namespaces here).
const lab = new Lab({ prefix: 'xdlab4242', directors: 1, realServers: 3, ipv6: true, xdpMode: 'native' });
const st = { ...labState('xdlab4242'), workdir: dir, config: path.join(dir, 'xdirector.yaml') };
const pw = path.join(dir, 'monitor.pw');
fs.writeFileSync(pw, 'secret\n', { mode: 0o600 });

function load(doc: Record<string, unknown>) {
  fs.writeFileSync(st.config, YAML.stringify(doc));
  return loadConfig(st.config);
}

test('the generated lab config passes the config loader with both VIPs and weights 1:1:2', () => {
  const cfg = load(generateConfig(lab, st, 'generic', pw));
  assert.equal(cfg.instance, 'xdlab4242');
  assert.equal(cfg.interface, 'eth0');
  assert.equal(cfg.xdp.mode, 'generic');
  assert.equal(cfg.admin.socket, '/run/xdirector/xdlab4242.sock');
  assert.deepEqual(
    cfg.services.map((s) => s.vip),
    ['10.77.0.100', 'fd77::100'],
  );
  assert.deepEqual(
    cfg.services[0].backends.map((b) => [b.address, b.weight]),
    [
      ['10.77.0.11', 1],
      ['10.77.0.12', 1],
      ['10.77.0.13', 2],
    ],
  );
});

test('scripts/config/lab.yaml gets the per-run instance, socket, mode and password file and still loads', () => {
  const { doc, source } = buildConfig(
    lab,
    st,
    { keep: false, mode: 'native', connections: 1, connections6: 0, concurrency: 1 },
    pw,
  );
  assert.match(source, /scripts\/config\/lab\.yaml$/);
  const cfg = load(doc);
  assert.equal(cfg.instance, 'xdlab4242');
  assert.equal(cfg.admin.socket, st.socket);
  assert.equal(cfg.xdp.pinDir, '/sys/fs/bpf/xdirector');
  assert.equal((cfg.monitor as { password_file?: string }).password_file, pw);
  assert.equal((cfg.monitor as { password_env?: string }).password_env, undefined);
  assert.ok(cfg.services.length >= 1);
});

test('a --config file that does not exist is an error naming it', () => {
  assert.throws(
    () =>
      buildConfig(
        lab,
        st,
        {
          keep: false,
          mode: 'native',
          connections: 1,
          connections6: 0,
          concurrency: 1,
          config: '/nonexistent/lab.yaml',
        },
        pw,
      ),
    (e: unknown) =>
      e instanceof XdError && e.code === 'XD_ERR_CONFIG_READ' && /\/nonexistent\/lab\.yaml/.test(e.message),
  );
});

test('lab arguments are parsed and a bad mode names the argument and the choices', () => {
  assert.deepEqual(parseMainArgs(['--keep', '--mode', 'generic', '--connections', '50']), {
    keep: true,
    mode: 'generic',
    connections: 50,
    connections6: 60,
    concurrency: 8,
  });
  assert.throws(() => parseMainArgs(['--mode', 'turbo']), /--mode turbo: use native or generic/);
  assert.throws(() => parseMainArgs(['--connections', '0']), /--connections 0: expected an integer >= 1/);
  assert.throws(() => parseMainArgs(['--down', 'rm -rf']), /--down rm -rf: give the lab prefix/);
});

test('client arguments are parsed and an unknown one is refused by name', () => {
  const o = parseClientArgs(['--host', 'fd77::100', '--connections', '12', '--concurrency', '3', '--json']);
  assert.equal(o.host, 'fd77::100');
  assert.equal(o.connections, 12);
  assert.equal(o.concurrency, 3);
  assert.equal(o.json, true);
  assert.equal(o.hold, false);
  assert.throws(() => parseClientArgs(['--conections', '5']), /unknown argument "--conections"/);
  assert.throws(() => parseClientArgs(['--port', '70000']), /--port 70000: expected 1\.\.65535/);
});
