// import-keepalived on real-world keepalived.conf shapes (test/fixtures/keepalived/real/, each
// citing the public config it is modelled on): every one either imports to a config that loads
// (check-config's rules; the only file problems left are the scripts and password file this
// machine does not have) or exits 4 with the list of what could not be translated and writes
// nothing. Each fixture's header says what to expect:
//   expect: N      the exit status
//   nat: N         the exit status once this build has forwarding: nat (lb_kind NAT is then
//                  translated, and the "lists:" lines naming lb_kind NAT no longer apply)
//   lists: RE      a line of the "no xdirector equivalent" list
//   warns: RE      a warning line
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { importKeepalivedMain } from '../../src/keepalived/cli';
import { FORWARDING } from '../../src/config/schema';
import { XdError } from '../../src/errors';

const ROOT = path.resolve(__dirname, '../../..');
const REAL = path.join(ROOT, 'test/fixtures/keepalived/real');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xdkr${process.pid}-`));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Problems a config can only have on a machine that lacks what it names: these are the operator's to provide. */
const MISSING_HERE =
  /cannot read \/etc\/xdirector\/monitor\.pw \(ENOENT\)|check_script\.command: \S+ does not exist|user \S+ does not exist/;

const NAT = (FORWARDING as readonly string[]).includes('nat');
const files = fs
  .readdirSync(REAL)
  .filter((f) => f.endsWith('.conf'))
  .sort();

describe('import-keepalived on real-world configs', () => {
  it('has at least ten of them, each citing its source', () => {
    assert.ok(files.length >= 10, `${files.length} fixtures`);
    for (const f of files)
      assert.match(fs.readFileSync(path.join(REAL, f), 'utf8'), /^[!#] Modelled on .*(github\.com\/|https:\/\/)/m, f);
  });

  for (const f of files) {
    const text = fs.readFileSync(path.join(REAL, f), 'utf8');
    const header = (k: string) => [...text.matchAll(new RegExp(`^[!#] ${k}: (.*)$`, 'gm'))].map((m) => m[1]!);
    const expect = Number((NAT ? header('nat')[0] : undefined) ?? header('expect')[0]);
    it(`${f}: exits ${expect}${expect === 0 ? ' with a config that loads' : ' with the list and writes nothing'}`, async () => {
      const out = path.join(tmp, `${f}.yaml`);
      // In process (the command's own code, its output captured): a process per fixture costs a second each here.
      const r = { status: 0, stdout: '', stderr: '' };
      r.status = await importKeepalivedMain([path.join(REAL, f), '-o', out], {
        stdout: (t) => {
          r.stdout += t;
        },
        stderr: (t) => {
          r.stderr += t;
        },
      });
      assert.equal(r.status, expect, r.stderr);
      assert.equal(r.stdout, '', '-o is honoured');
      for (const re of header('lists').filter((l) => !(NAT && /lb_kind NAT/.test(l))))
        assert.match(r.stderr, new RegExp(`^  \\S+\\.conf:\\d+: .*${re}`, 'm'));
      for (const re of header('warns')) assert.match(r.stderr, new RegExp(`^import-keepalived: warning: .*${re}`, 'm'));
      if (expect !== 0) {
        assert.equal(fs.existsSync(out), false, 'nothing written');
        assert.match(r.stderr, /^import-keepalived: no virtual_server of .* could be translated \(listed above\)/m);
        return;
      }
      try {
        loadConfig(out);
      } catch (e) {
        assert.ok(e instanceof XdError, String(e));
        const problems = e.message.split('\n');
        assert.deepEqual(
          problems.filter((p) => !MISSING_HERE.test(p)),
          [],
          'only files and users this machine lacks',
        );
      }
    });
  }
});
