// What `xdirector run` needs from the kernel, checked before it touches anything: a user without
// it would otherwise fail on whatever comes first (the state directory's drain file), which names
// the wrong problem. Read from the process's effective capability set (/proc/self/status CapEff),
// so root in a container without the capabilities is caught too, and a non-root user given them
// (systemd AmbientCapabilities) is not refused.
import fs from 'node:fs';

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_BPF = 39;

export const RUN_AS_ROOT = 'run as root (CAP_NET_ADMIN, CAP_BPF)';

/** The capabilities `run` lacks, by name; [] when it has them (or the set cannot be read: then the kernel decides). */
export function missingRunCapabilities(statusText?: string): string[] {
  let text = statusText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/status', 'utf8');
    } catch {
      return [];
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  if (!m) return [];
  const eff = BigInt(`0x${m[1]}`);
  const has = (bit: number) => (eff >> BigInt(bit)) & 1n;
  const out: string[] = [];
  if (!has(CAP_NET_ADMIN)) out.push('CAP_NET_ADMIN');
  // Kernels before 5.8 have no CAP_BPF: CAP_SYS_ADMIN covers BPF there and everywhere.
  if (!has(CAP_BPF) && !has(CAP_SYS_ADMIN)) out.push('CAP_BPF');
  return out;
}
