// The package version this daemon runs (status, metrics, the status page).
import fs from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

/** package.json's version ("unknown" when it cannot be read: a copied dist/ without it). */
export function xdirectorVersion(): string {
  if (cached === undefined) {
    try {
      cached = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
