// Operator commands: notify hooks run one at a time in transition order; track
// scripts report their exit status and are killed at their timeout.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { NotifyQueue, runCommand } from '../../src/vrrp/exec';

describe('VRRP commands', () => {
  const dir = mkdtempSync(join(tmpdir(), `xdd${process.pid}-exec-`));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs notify hooks strictly in order even when an earlier one is slow', async () => {
    const out = join(dir, 'notify.log');
    // The first (MASTER) hook sleeps before writing: a parallel runner would write BACKUP first.
    const q = new NotifyQueue(
      `sh -c 'if [ "$2" = MASTER ]; then sleep 0.3; fi; echo "$1 $2 $3" >> ${out}' hook`,
      silentLogger(),
    );
    q.push('vi1', 'MASTER', 150);
    q.push('vi1', 'BACKUP', 150);
    q.push('vi1', 'FAULT', 150);
    await q.drain();
    assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n'), [
      'vi1 MASTER 150',
      'vi1 BACKUP 150',
      'vi1 FAULT 150',
    ]);
    assert.equal(q.runs, 3);
    assert.equal(q.failures, 0);
  });

  it('counts a failing notify hook and goes on with the next', async () => {
    const q = new NotifyQueue('exit 3', silentLogger());
    q.push('vi1', 'MASTER', 100);
    q.push('vi1', 'BACKUP', 100);
    await q.drain();
    assert.equal(q.failures, 2);
  });

  it('reports a track script by its exit status', async () => {
    assert.equal((await runCommand('true', [], 5000)).ok, true);
    const r = await runCommand('exit 2', [], 5000);
    assert.equal(r.ok, false);
    assert.equal(r.code, 2);
  });

  it('kills a track script at its timeout and counts it as failed', async () => {
    const t0 = performance.now();
    const r = await runCommand('sleep 5', [], 200);
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, true);
    assert.ok(performance.now() - t0 < 3000);
  });
});
