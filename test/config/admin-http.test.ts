// admin.http in the config: the address (port 1-65535), a non-loopback bind refused without a
// token, the read token, the Host names, and the token files' checks (readable, long enough) and
// warning (readable by others) as check-config prints them. Files in a per-run temp directory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig, loadConfig } from '../../src/config';
import { XdError } from '../../src/errors';
import { configProblems as problems } from '../lib/config';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), `xdc-http-${process.pid}-`));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));
const BIN = path.resolve(__dirname, '../../../bin/xdirector.js');

const cfg = (admin: string) => `instance: lab
interface: eth0
admin: { socket: /run/xd/lab.sock, ${admin} }
services:
  - { name: web, vip: 10.77.0.100, port: 80, check: none, backends: [{ address: 10.77.0.11 }] }
`;

test('a bind other hosts can reach is refused without a token, naming the settings that fix it', () => {
  for (const bind of ['0.0.0.0:9105', '10.77.0.2:9105', '"[::]:9105"']) {
    assert.deepEqual(problems(cfg(`http: ${bind}`)), [
      `lab.yaml: admin.http: binds ${bind.replace(/"|\[|\]|:9105/g, '')}, which other hosts can reach, with no token: anyone who reaches it would read the whole topology (/, /status, /metrics); set admin.http_read_token_file (readers such as Prometheus send "Authorization: Bearer <token>") or admin.http_token_file, or bind 127.0.0.1 (line 3)`,
    ]);
  }
  // With a read token, or with the write token (it also reads), or on loopback: accepted.
  assert.equal(
    parseConfig(cfg('http: 0.0.0.0:9105, http_read_token_file: /etc/xd/read.token'), 'lab.yaml').admin
      .httpReadTokenFile,
    '/etc/xd/read.token',
  );
  assert.equal(
    parseConfig(cfg('http: 0.0.0.0:9105, http_token_file: /etc/xd/http.token'), 'lab.yaml').admin.http?.host,
    '0.0.0.0',
  );
  assert.deepEqual(parseConfig(cfg('http: "127.0.0.2:9105"'), 'lab.yaml').admin.http, {
    host: '127.0.0.2',
    port: 9105,
  });
  assert.deepEqual(parseConfig(cfg('http: "[::1]:9105"'), 'lab.yaml').admin.http, { host: '::1', port: 9105 });
});

test('a port outside 1-65535 and an address that is not one are refused', () => {
  assert.deepEqual(problems(cfg('http: 127.0.0.1:99999')), [
    'lab.yaml: admin.http: port 99999 is not 1-65535: give a port such as 9105, got "127.0.0.1:99999" (line 3)',
  ]);
  assert.match(problems(cfg('http: 127.0.0.1:0')).join('\n'), /admin\.http: port 0 is not 1-65535/);
  assert.match(
    problems(cfg('http: 999.1.1.1:9105')).join('\n'),
    /admin\.http: must be an address and port such as "127\.0\.0\.1:9105"/,
  );
});

test('http_host_names are host names, kept in lower case', () => {
  assert.deepEqual(
    parseConfig(cfg('http: 127.0.0.1:9105, http_host_names: [Director1.example.net]'), 'lab.yaml').admin.httpHostNames,
    ['director1.example.net'],
  );
  assert.match(
    problems(cfg('http: 127.0.0.1:9105, http_host_names: ["evil.example/x"]')).join('\n'),
    /admin\.http_host_names\[0\]: must be a host name/,
  );
});

test('check-config refuses a short or missing token file and warns about one other users can read', () => {
  const file = (name: string, text: string, mode: number) => {
    const f = path.join(TMP, name);
    fs.writeFileSync(f, text);
    fs.chmodSync(f, mode);
    return f;
  };
  const short = file('short.token', 'abc\n', 0o600);
  const c1 = path.join(TMP, 'short.yaml');
  fs.writeFileSync(
    c1,
    cfg(`http: 0.0.0.0:9105, http_read_token_file: ${short}, http_token_file: ${path.join(TMP, 'missing.token')}`),
  );
  assert.throws(
    () => loadConfig(c1),
    (e: unknown) =>
      e instanceof XdError &&
      e.message.split('\n').length === 2 &&
      e.message.includes(
        `${c1}: admin.http_token_file: cannot read ${path.join(TMP, 'missing.token')} (ENOENT): create it with a random token`,
      ) &&
      e.message.includes(`${c1}: admin.http_read_token_file: the token in ${short} is shorter than 16 characters`),
  );
  const open = file('open.token', 'read-token-0123456789abcdef\n', 0o644);
  const c2 = path.join(TMP, 'open.yaml');
  fs.writeFileSync(c2, cfg(`http: 0.0.0.0:9105, http_read_token_file: ${open}`));
  assert.deepEqual(loadConfig(c2).warnings, [
    `admin.http_read_token_file: ${open} is readable by every user (mode 0644): anyone who reads it can use the HTTP listener as xdirector; chmod 600 ${open}`,
  ]);
  const r = spawnSync(process.execPath, [BIN, 'check-config', '-c', c2], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`${c2}: warning: admin\\.http_read_token_file: ${open} is readable by every user`));
  fs.chmodSync(open, 0o640);
  assert.match(loadConfig(c2).warnings.join('\n'), /is readable by its group \(mode 0640\)/);
  fs.chmodSync(open, 0o600);
  assert.deepEqual(loadConfig(c2).warnings, []);
});
