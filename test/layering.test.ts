// The layering of src/ (documented in src/README.md): every import, export-from, require()
// and dynamic import() between files of src/ must go to the same layer or a lower one, and
// no file may reach itself through its imports (type-only imports count: they are design
// dependencies too). Pure: reads the TypeScript sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src');

/** Layer of each part of src/, lowest first; the longest matching prefix wins. Keep in step with src/README.md. */
const LAYERS: [prefix: string, layer: number][] = [
  // ground floor: errors, logging, shared types, internet addresses, the native addon loader, subcommand arguments
  ['errors.ts', 0], ['clock.ts', 0], ['log.ts', 0], ['defaults.ts', 0], ['state/', 0], ['net/inet.ts', 0], ['addon.ts', 0], ['subcommand.ts', 0],
  // pure building blocks and the BPF wrapper
  ['maglev/', 1], ['bpf/', 1],
  // the config (uses Maglev's table sizes)
  ['config/', 2],
  // the parts that touch the kernel or the servers, and the config importer / real-server setup
  ['dataplane/', 3], ['health/', 3], ['vrrp/', 3], ['net/', 3], ['bgp/', 3], ['keepalived/', 3], ['realserver/', 3], ['systemd/', 3],
  // config + health + MACs -> desired state
  ['desired/', 4],
  // the daemon and its admin API
  ['daemon/', 5], ['api/', 5],
  // the command line
  ['cli/', 6],
];

function layerOf(rel: string): number | undefined {
  let best: [string, number] | undefined;
  for (const [p, l] of LAYERS) if ((rel === p || (p.endsWith('/') && rel.startsWith(p))) && (!best || p.length > best[0].length)) best = [p, l];
  return best?.[1];
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** Strip comments so that an import named in a comment does not count (strings stay). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const SPEC_RES = [
  /\bimport\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*['"]([^'"]+)['"]/g, // import x from '...'
  /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s*['"]([^'"]+)['"]/g, // export ... from '...'
  /\bimport\s*['"]([^'"]+)['"]/g, // import '...'
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // import('...')
  /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // require('...')
];

/** The src/ files a file imports (relative specifiers resolved like TypeScript: .ts or /index.ts). */
function importsOf(file: string): string[] {
  const text = code(fs.readFileSync(file, 'utf8'));
  const out = new Set<string>();
  for (const re of SPEC_RES) {
    for (const m of text.matchAll(re)) {
      const spec = m[1];
      if (!spec.startsWith('.')) continue;
      const base = path.resolve(path.dirname(file), spec);
      const target = [`${base}.ts`, path.join(base, 'index.ts'), base].find((f) => f.endsWith('.ts') && fs.existsSync(f));
      if (target && target.startsWith(SRC + path.sep)) out.add(target);
    }
  }
  return [...out];
}

const rel = (f: string): string => path.relative(SRC, f).split(path.sep).join('/');
const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every file of src/ has a layer', () => {
  assert.deepEqual(files.map(rel).filter((f) => layerOf(f) === undefined), [], 'add the new folder to LAYERS here and to src/README.md');
});

test('no file of src/ imports from a higher layer', () => {
  const up: string[] = [];
  for (const [f, deps] of graph) {
    const lf = layerOf(rel(f));
    for (const d of deps) {
      const ld = layerOf(rel(d));
      if (lf !== undefined && ld !== undefined && ld > lf) up.push(`${rel(f)} (layer ${lf}) imports ${rel(d)} (layer ${ld})`);
    }
  }
  assert.deepEqual(up, []);
});

test('no file of src/ reaches itself through its imports', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('the import scanner sees every kind of import', () => {
  // A check on the checker: these src/ files are known to use each form.
  const has = (from: string, to: string): boolean => (graph.get(path.join(SRC, from)) ?? []).includes(path.join(SRC, to));
  assert.ok(has('daemon/run.ts', 'desired/index.ts'), 'import { x } from');
  assert.ok(has('daemon/run.ts', 'health/monitor.ts'), 'import type');
  assert.ok(has('cli/main.ts', 'daemon/run.ts'), "dynamic import('...')");
  assert.ok(has('config/index.ts', 'config/load.ts'), 'export { x } from');
});
