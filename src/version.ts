// The installed xdirector's version (package.json), for `xdirector --version`, `status --json`
// and the daemon's status. Read once; dist/src/version.js sits three levels below the package root.
import fs from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

export function xdirectorVersion(): string {
  if (cached === undefined) {
    try {
      cached = (
        JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }
      ).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
