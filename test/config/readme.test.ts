// The README's config reference is what an operator copies first: it must pass check-config
// as written (only the secret files it names are swapped for temporary ones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseConfig } from '../../src/config/load';

const ROOT = path.join(__dirname, '..', '..', '..');

function readmeConfig(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Config reference$/m)[1];
  assert.ok(section, 'README.md has no "## Config reference" section');
  const block = /^```yaml\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(block, 'the Config reference section has no ```yaml block');
  return block[1];
}

test('the README config reference passes check-config with every file it names present', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xdreadme${process.pid}-`));
  try {
    let text = readmeConfig();
    const named = [...text.matchAll(/(?:password_file|http_token_file|token_file): (\S+)/g)].map((m) => m[1]);
    assert.ok(named.length >= 1, 'the reference names its secret files');
    for (const [i, file] of named.entries()) {
      const local = path.join(dir, `secret${i}`);
      fs.writeFileSync(local, 'not-a-real-secret\n', { mode: 0o600 });
      text = text.split(file).join(local);
    }
    const cfg = parseConfig(text, 'README.md#config-reference', { checkFiles: true });
    assert.ok(cfg.services.length >= 2, 'the reference shows a writer and a readers service');
    assert.ok(cfg.bgp && cfg.vrrp.length >= 1, 'the reference shows both VRRP and BGP');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the README recipe for trying scripts/config/example.yaml runs as written and check-config says OK', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /^```sh\n((?:(?!```)[\s\S])*?scripts\/config\/example\.yaml[\s\S]*?)^```$/m.exec(readme);
  assert.ok(block, 'README.md shows how to try scripts/config/example.yaml');
  // Its scratch files go to a directory of this run, not the shared /tmp.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xdexample${process.pid}-`));
  try {
    const script = block[1].split('/tmp/').join(`${dir}/`);
    const out = execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: ROOT, encoding: 'utf8' });
    assert.match(out, /: OK \(instance prod, 2 service\(s\)\)/);
    assert.equal(fs.statSync(path.join(dir, 'monitor.pw')).mode & 0o077, 0, 'the password file is private');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
