// Files the config names and the daemon reads later: checked when a config file is loaded
// (check-config, run, reload), so a missing or unreadable one is refused up front with its
// key path instead of failing at run time. The content is read and dropped, never kept or shown.

import * as fs from 'node:fs';
import type { Problem } from './rules';

/** Problems with the files `raw` (the parsed YAML) names: monitor.password_file. */
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
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
