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

/**
 * Layer of each part of src/, read from the table in src/README.md (its first column the layer,
 * its second the parts in backticks), so the table the reader sees is the one enforced here.
 */
function readLayers(): [prefix: string, layer: number][] {
  const out: [string, number][] = [];
  for (const line of fs.readFileSync(path.join(SRC, 'README.md'), 'utf8').split('\n')) {
    const m = /^\|\s*(\d+)\s*\|([^|]*)\|/.exec(line);
    if (m) for (const part of m[2].matchAll(/`([^`]+)`/g)) out.push([part[1], Number(m[1])]);
  }
  return out;
}
const LAYERS = readLayers();

function layerOf(rel: string): number | undefined {
  let best: [string, number] | undefined;
  for (const [p, l] of LAYERS)
    if ((rel === p || (p.endsWith('/') && rel.startsWith(p))) && (!best || p.length > best[0].length)) best = [p, l];
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
      const target = [`${base}.ts`, path.join(base, 'index.ts'), base].find(
        (f) => f.endsWith('.ts') && fs.existsSync(f),
      );
      if (target && target.startsWith(SRC + path.sep)) out.add(target);
    }
  }
  return [...out];
}

const rel = (f: string): string => path.relative(SRC, f).split(path.sep).join('/');
const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every file of src/ has a layer', () => {
  assert.deepEqual(
    files.map(rel).filter((f) => layerOf(f) === undefined),
    [],
    'add the new folder or file to the layer table in src/README.md',
  );
});

test('no file of src/ imports from a higher layer', () => {
  const up: string[] = [];
  for (const [f, deps] of graph) {
    const lf = layerOf(rel(f));
    for (const d of deps) {
      const ld = layerOf(rel(d));
      if (lf !== undefined && ld !== undefined && ld > lf)
        up.push(`${rel(f)} (layer ${lf}) imports ${rel(d)} (layer ${ld})`);
    }
  }
  assert.deepEqual(up, []);
});

test('the layer table in src/README.md is read: every layer 0 to 6 has parts', () => {
  assert.deepEqual([...new Set(LAYERS.map(([, l]) => l))].sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.ok(
    LAYERS.some(([p, l]) => p === 'config/' && l === 2) && LAYERS.some(([p, l]) => p === 'net/inet.ts' && l === 0),
  );
});

/** The top folder of a src/ file ('' for a file at the top). */
const folderOf = (r: string): string => (r.includes('/') ? r.slice(0, r.indexOf('/')) : '');

test('a folder with an index.ts is entered only through it: no deep import from another folder', () => {
  const deep: string[] = [];
  for (const [f, deps] of graph) {
    for (const d of deps) {
      const rf = rel(f);
      const rd = rel(d);
      const folder = folderOf(rd);
      if (folder === '' || folder === folderOf(rf) || rd === `${folder}/index.ts`) continue;
      if (fs.existsSync(path.join(SRC, folder, 'index.ts')))
        deep.push(`${rf} imports ${rd}: import from '${folder}' (add the name to ${folder}/index.ts)`);
    }
  }
  assert.deepEqual(deep, []);
});

test('the dataplane does not import the config: what it needs comes in as state/ types or arguments', () => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    if (!rel(f).startsWith('dataplane/')) continue;
    for (const d of deps) if (rel(d).startsWith('config/')) bad.push(`${rel(f)} imports ${rel(d)}`);
  }
  assert.deepEqual(bad, []);
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
  const has = (from: string, to: string): boolean =>
    (graph.get(path.join(SRC, from)) ?? []).includes(path.join(SRC, to));
  assert.ok(has('daemon/run.ts', 'desired/index.ts'), 'import { x } from');
  assert.ok(has('daemon/operator.ts', 'state/file.ts'), 'import type');
  assert.ok(has('cli/main.ts', 'daemon/run.ts'), "dynamic import('...')");
  assert.ok(has('config/index.ts', 'config/load.ts'), 'export { x } from');
});
