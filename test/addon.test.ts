// The native addon's surface is declared once (NativeAddon in src/addon.ts): that declaration
// names exactly what the built addon exports, no more (a call that would fail at run time) and no
// less (an export nobody declared, reached through a cast).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAddon } from '../src/addon';

const ROOT = path.join(__dirname, '..', '..');

/** The member names of `export interface NativeAddon { ... }` in src/addon.ts. */
function declared(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'src', 'addon.ts'), 'utf8');
  const body = /^export interface NativeAddon \{\n([\s\S]*?)^\}/m.exec(text);
  assert.ok(body, 'src/addon.ts declares export interface NativeAddon { ... }');
  return [...body[1].matchAll(/^ {2}(\w+)\s*[(:?]/gm)].map((m) => m[1]).sort();
}

test('NativeAddon in src/addon.ts declares exactly what the built addon exports', () => {
  const exported = Object.keys(loadAddon()).sort();
  assert.deepEqual(declared(), exported);
});

test('no file of src/ declares part of the addon elsewhere (module augmentation) or casts it', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const t = fs.readFileSync(p, 'utf8');
        if (/declare module ['"][^'"]*native['"]|loadAddon\(\)\s+as\b|getNative\(\)\s+as\b/.test(t))
          offenders.push(path.relative(ROOT, p));
      }
    }
  };
  walk(path.join(ROOT, 'src'));
  assert.deepEqual(offenders, []);
});
