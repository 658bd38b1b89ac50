// The bench's dead-run cleanup (scripts/bench/cleanup.ts) removes the director's placeholder
// veth of a run whose process is gone, by its exact name, and leaves a live run's alone.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cleanupStaleRuns } from '../../scripts/bench/cleanup';
import { placeholderName } from '../../scripts/bench/director';
import { silentLogger } from '../../src/log';

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
}

function addVeth(a: string): void {
  execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', `${a.slice(0, -1)}b`]);
}

describe('bench dead-run cleanup', () => {
  // A pid that ran and is gone: a child that has exited and been reaped.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const deadLink = placeholderName(dead, 7);
  const liveLink = placeholderName(process.pid, 998);

  after(() => {
    for (const l of [deadLink, liveLink]) if (linkExists(l)) execFileSync('ip', ['link', 'del', l]);
  });

  it('removes the placeholder veth pair of a dead run and keeps the one of a live run', async () => {
    addVeth(deadLink);
    addVeth(liveLink);
    const removed = await cleanupStaleRuns(silentLogger());
    assert.ok(removed.includes(`veth ${deadLink}`), removed.join(', '));
    assert.equal(linkExists(deadLink), false);
    assert.equal(linkExists(`${deadLink.slice(0, -1)}b`), false);
    assert.equal(linkExists(liveLink), true);
    assert.ok(!removed.some((x) => x.includes(`xdb${process.pid}-`)), removed.join(', '));
  });

  it('names the placeholder after the whole pid so that no other run can claim it', () => {
    assert.equal(placeholderName(4194304, 12), 'xdb4194304-12a');
    assert.ok(placeholderName(4194304, 1999).length <= 15, 'fits IFNAMSIZ');
  });
});
