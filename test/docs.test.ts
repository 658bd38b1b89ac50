// A newcomer who clones the repository can follow every document a comment or a doc cites: each
// Markdown file named in a comment of the code (src, bpf, native, scripts, test, bin) or in a Markdown
// file must be a file of the repository, found from the repository's root or from the citing
// file's folder. Pure: reads the sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const CODE = ['src', 'bpf', 'native', 'scripts', 'test', 'bin', 'systemd'];
const SKIP = new Set(['node_modules', 'dist', 'build', 'prebuilds', 'bench-results', '.git', '.lab']);

function files(dir: string, keep: (f: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

/** The comments of a source file: // and /* *\/ in C, C++, TypeScript and JavaScript, # in shell. */
export function comments(file: string, text: string): string[] {
  if (/\.(sh|bash)$/.test(file) || !/\.(ts|js|mjs|c|h|cc)$/.test(file))
    return [...text.matchAll(/(?:^|\s)#(.*)$/gm)].map((m) => m[1]);
  // Strings first, so a "//" inside one is not taken for a comment.
  const out: string[] = [];
  for (const m of text.matchAll(
    /\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g,
  )) {
    if (m[0].startsWith('/')) out.push(m[0]);
  }
  return out;
}

/** Markdown documents cited in a text, by name or path (not a template like `${stem}.md`). */
export function citedDocs(text: string): string[] {
  return [...text.matchAll(/(?<![\w$}./-])((?:[\w-]+\/)*[\w-]+\.md)\b/g)].map((m) => m[1]);
}

const held = (from: string, doc: string): boolean =>
  [ROOT, path.dirname(from)].some((d) => fs.existsSync(path.join(d, doc)));

test('every document a comment or a doc cites is in the repository', () => {
  const missing: string[] = [];
  const code = CODE.flatMap((d) => files(path.join(ROOT, d), (f) => /\.(ts|js|mjs|c|h|cc|sh)$/.test(f)));
  const docs = [
    path.join(ROOT, 'README.md'),
    ...CODE.flatMap((d) => files(path.join(ROOT, d), (f) => f.endsWith('.md'))),
  ];
  for (const f of code) {
    for (const c of comments(f, fs.readFileSync(f, 'utf8'))) {
      for (const doc of citedDocs(c)) if (!held(f, doc)) missing.push(`${path.relative(ROOT, f)} cites ${doc}`);
    }
  }
  for (const f of docs) {
    for (const doc of citedDocs(fs.readFileSync(f, 'utf8')))
      if (!held(f, doc)) missing.push(`${path.relative(ROOT, f)} cites ${doc}`);
  }
  assert.deepEqual(
    missing,
    [],
    'point the comment at a document of the repository (README.md, src/README.md, bpf/README.md) or say the fact inline',
  );
});

test('the citation check finds a missing document and passes a held one', () => {
  const f = path.join(ROOT, 'src', 'x.ts');
  const cited = comments(
    f,
    'const s = \'// DESIGN.md in a string\';\n// see DESIGN.md "Dataplane"\n/* and src/README.md */\nconst t = `${stem}.md`;',
  ).flatMap(citedDocs);
  assert.deepEqual(cited, ['DESIGN.md', 'src/README.md']);
  assert.deepEqual(
    cited.filter((d) => !held(f, d)),
    ['DESIGN.md'],
  );
});
