// The monitor password: read from a file or an environment variable, never from the config or
// the command line. Read again at every connect, so a rotated password file takes effect
// without a restart. Errors name the source, never the value.

import * as fs from 'node:fs';
import { XdError } from '../errors';

export interface PasswordSource {
  password_file?: string;
  password_env?: string;
}

export function readPassword(src: PasswordSource): string {
  if (src.password_file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(src.password_file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new XdError(
        'XD_ERR_HEALTH_PASSWORD',
        `monitor.password_file ${src.password_file}: cannot read it (${code}): create it (mode 0600) with the monitor password on one line`,
        { cause: err },
      );
    }
    // One trailing newline (or CRLF) is an editor artefact, not part of the password.
    return text.replace(/\r?\n$/, '');
  }
  if (src.password_env !== undefined) {
    const v = process.env[src.password_env];
    if (v === undefined) {
      throw new XdError(
        'XD_ERR_HEALTH_PASSWORD',
        `monitor.password_env ${src.password_env}: the environment variable is not set: export it before starting xdirector`,
      );
    }
    return v;
  }
  throw new XdError(
    'XD_ERR_HEALTH_PASSWORD',
    'monitor: neither password_file nor password_env is set: give exactly one',
  );
}
