// Files the config names and the daemon reads later: checked when a config file is loaded
// (check-config, run, reload), so a missing or unreadable one is refused up front with its
// key path instead of failing at run time. The content is read and dropped, never kept or shown.

import * as fs from 'node:fs';
import type { Problem } from './rules';
import { md5KeyOfFile, md5KeyProblem } from './bgp';

/** Problems with the files `raw` (the parsed YAML) names: monitor.password_file, bgp.neighbours[].password_file. */
export function fileProblems(raw: unknown): Problem[] {
  const out: Problem[] = [];
  const monitor = isObj(raw) && isObj(raw.monitor) ? raw.monitor : undefined;
  const file = monitor?.password_file;
  if (typeof file === 'string' && file !== '') {
    try {
      fs.readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const fix = code === 'ENOENT' ? 'create it (mode 0600) with the monitor password on one line, or point password_file at the file that holds it'
        : code === 'EISDIR' ? 'give the file that holds the password, not a directory'
          : 'make it readable by the user xdirector runs as (mode 0600, owned by that user)';
      out.push({ path: ['monitor', 'password_file'], message: `cannot read ${file} (${code}): ${fix}` });
    }
  }
  const bgp = isObj(raw) && isObj(raw.bgp) ? raw.bgp : undefined;
  const neighbours = Array.isArray(bgp?.neighbours) ? bgp.neighbours : [];
  neighbours.forEach((n, i) => {
    const pwFile = isObj(n) ? n.password_file : undefined;
    if (typeof pwFile !== 'string' || pwFile === '') return;
    const path = ['bgp', 'neighbours', i, 'password_file'];
    let text: string;
    try {
      text = fs.readFileSync(pwFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const fix = code === 'ENOENT' ? 'create it (mode 0600) with the TCP MD5 key on one line, or point password_file at the file that holds it'
        : code === 'EISDIR' ? 'give the file that holds the key, not a directory'
          : 'make it readable by the user xdirector runs as (mode 0600, owned by that user)';
      out.push({ path, message: `cannot read ${pwFile} (${code}): ${fix}` });
      return;
    }
    // The key itself is never shown, only what is wrong with it.
    const problem = md5KeyProblem(md5KeyOfFile(text));
    if (problem) out.push({ path, message: `the key in ${pwFile} ${problem}` });
  });
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
