// Shared by the VM tests: boot Debian's kernel under qemu (scripts/vm/run.sh) with a guest
// script, console to <out>/console.log, results in <out>.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../../..');
const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
/** Why the VM tests cannot run here (found by trying), or false. */
export const skip: string | false = qemu.error
  ? `requires qemu-system-x86_64: ${qemu.error.message} (apt-get install qemu-system-x86)`
  : false;

/** Run `bash <guestScript>` in a fresh guest; resolves with run.sh's exit status, the wall time and the output dir. */
export async function bootGuest(
  guestScript: string,
  timeoutS: number,
  tag: string,
): Promise<{ rc: number; wallMs: number; out: string }> {
  const out = mkdtempSync(`/tmp/xdg-${tag}-${process.pid}-`);
  const t = Date.now();
  const rc = await new Promise<number>((res, rej) => {
    const p = spawn(
      join(ROOT, 'scripts/vm/run.sh'),
      ['-o', out, '-l', join(out, 'console.log'), '-t', String(timeoutS), '--', 'bash', guestScript],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', rej);
    p.on('exit', (code) => {
      if (code === null) rej(new Error(`run.sh killed: ${err}`));
      else res(code);
    });
  });
  return { rc, wallMs: Date.now() - t, out };
}
