// shape.ts: measures the shape of the code the same way before and after a refactoring.
//
//   node dist/scripts/shape.js functions [--top N] [DIR...]   # the N longest functions of each folder (default 10; bpf src native)
//   node dist/scripts/shape.js verifier [--object dist/bpf/xdirector.bpf.o]
//
// functions: TypeScript through the compiler's own parser (functions, methods, arrows and
// constructors; a nested function counts inside its parent too); C and C++ by brace matching
// at the top level (comments and strings skipped, `namespace x {` and `extern "C" {` looked
// through). Length is lines from the signature's first line to the closing brace, and of those
// the lines that hold code (not blank, not only comment).
//
// verifier: loads the object's programs with bpftool into a pin under /sys/fs/bpf made for this
// run, prints the verifier's `processed N insns` line for each, then removes the pin.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');

export interface FunctionSpan {
  file: string;
  name: string;
  line: number;
  lines: number;
  /** Lines with code on them (not blank, not only comment). */
  code: number;
}

/** Per line (1-based) of text: does it hold code? Comments and blank lines do not. */
function codeLines(text: string): boolean[] {
  const clean = text.replace(
    /\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`/g,
    (m) => (m.startsWith('/') ? m.replace(/[^\n]/g, ' ') : m.replace(/[^\n]/g, 'x')),
  );
  return [false, ...clean.split('\n').map((l) => l.trim() !== '')];
}

const withCode = (spans: Omit<FunctionSpan, 'code'>[], text: string): FunctionSpan[] => {
  const has = codeLines(text);
  return spans.map((f) => ({ ...f, code: has.slice(f.line, f.line + f.lines).filter(Boolean).length }));
};

function walk(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, exts));
    else if (exts.some((x) => e.name.endsWith(x)) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** Every function-like node of a TypeScript file with a body. */
export function tsFunctions(file: string, text: string): Omit<FunctionSpan, 'code'>[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Omit<FunctionSpan, 'code'>[] = [];
  const lineOf = (pos: number): number => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const nameOf = (n: ts.Node): string => {
    if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isFunctionExpression(n)) && n.name)
      return n.name.getText(sf);
    if (ts.isConstructorDeclaration(n))
      return `${(n.parent as ts.ClassLikeDeclaration).name?.getText(sf) ?? 'class'}.constructor`;
    if (ts.isGetAccessor(n) || ts.isSetAccessor(n)) return n.name.getText(sf);
    const p = n.parent;
    if (p && ts.isVariableDeclaration(p)) return p.name.getText(sf);
    if (p && ts.isPropertyAssignment(p)) return p.name.getText(sf);
    if (p && ts.isPropertyDeclaration(p)) return p.name.getText(sf);
    return '(anonymous)';
  };
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const start = lineOf(n.getStart(sf));
      out.push({ file, name: nameOf(n), line: start, lines: lineOf(n.end) - start + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Top-level function definitions of a C or C++ file, by brace matching. */
export function cFunctions(file: string, text: string): Omit<FunctionSpan, 'code'>[] {
  // Blank out comments, strings and preprocessor lines, keeping newlines so line numbers hold.
  const blank = (s: string): string => s.replace(/[^\n]/g, ' ');
  const clean = text
    .replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g, blank)
    .replace(/^[ \t]*#(?:[^\n]*\\\n)*[^\n]*/gm, blank);
  const out: Omit<FunctionSpan, 'code'>[] = [];
  let depth = 0; // braces that are not transparent
  const stack: boolean[] = []; // per open brace: counted?
  let head = ''; // text since the last top-level statement end
  let headStart = 0;
  let open: { name: string; line: number } | undefined;
  let line = 1;
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i];
    if (c === '\n') line++;
    if (depth === 0) {
      if (head.trim() === '') headStart = line;
      head += c;
    }
    if (c === '{') {
      if (depth === 0) {
        const h = head.slice(0, -1).trim();
        const transparent = /^(namespace\b[\w\s:]*|extern\s*)$/.test(h.replace(/\s+/g, ' ').trim());
        stack.push(!transparent);
        if (transparent) {
          head = '';
          continue;
        }
        const m = /([A-Za-z_]\w*(?:::~?[A-Za-z_]\w*)*)\s*\((?:[^;{}()]|\([^;{}()]*\))*\)[^;{}()]*$/.exec(h);
        const kind = /^(?:typedef\s+)?(?:struct|union|enum|class)\b/.test(h) || /=\s*$/.test(h);
        open = m && !kind ? { name: m[1], line: headStart } : undefined;
      } else stack.push(true);
      if (stack[stack.length - 1]) depth++;
    } else if (c === '}') {
      const counted = stack.pop();
      if (counted) depth--;
      if (counted && depth === 0) {
        if (open) out.push({ file, name: open.name, line: open.line, lines: line - open.line + 1 });
        open = undefined;
        head = '';
      } else if (!counted) head = '';
    } else if (c === ';' && depth === 0) head = '';
  }
  return out;
}

export function functionsIn(dir: string): FunctionSpan[] {
  const out: FunctionSpan[] = [];
  for (const f of walk(dir, ['.ts', '.c', '.h', '.cc'])) {
    const text = fs.readFileSync(f, 'utf8');
    const rel = path.relative(ROOT, f);
    out.push(...withCode(f.endsWith('.ts') ? tsFunctions(rel, text) : cFunctions(rel, text), text));
  }
  return out.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
}

function verifier(object: string): void {
  // bpftool -d asks for the verifier log, whose last lines count what was processed; the
  // object loads with its .rodata defaults (the daemon may set them otherwise at run time).
  const pin = `/sys/fs/bpf/xd-shape-${process.pid}`;
  try {
    const r = spawnSync('bpftool', ['-d', 'prog', 'loadall', object, pin, 'type', 'xdp'], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    const log = `${r.stdout}\n${r.stderr}`;
    const counts = [...log.matchAll(/^processed (\d+) insns .*$/gm)].map((m) => m[0]);
    if (r.status !== 0 || counts.length === 0) {
      throw new Error(
        `bpftool -d prog loadall ${object} failed (exit ${r.status}): ${log.trim().split('\n').slice(-5).join(' | ')}`,
      );
    }
    for (const c of counts) console.log(c);
  } finally {
    fs.rmSync(pin, { recursive: true, force: true });
  }
}

function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  const opt = (name: string, dflt: string): string => {
    const i = rest.indexOf(name);
    if (i < 0) return dflt;
    const v = rest[i + 1];
    rest.splice(i, 2);
    return v;
  };
  if (cmd === 'functions') {
    const top = Number(opt('--top', '10'));
    const dirs = rest.length > 0 ? rest : ['bpf', 'src', 'native'];
    for (const d of dirs) {
      console.log(`${d}/: the ${top} longest functions (lines, of which code)`);
      for (const f of functionsIn(path.join(ROOT, d)).slice(0, top)) {
        console.log(`  ${String(f.lines).padStart(4)} ${String(f.code).padStart(4)}  ${f.name}  ${f.file}:${f.line}`);
      }
    }
  } else if (cmd === 'verifier') {
    verifier(path.resolve(ROOT, opt('--object', 'dist/bpf/xdirector.bpf.o')));
  } else {
    console.error('usage: node dist/scripts/shape.js functions [--top N] [DIR...] | verifier [--object FILE]');
    process.exit(2);
  }
}

if (require.main === module) main(process.argv.slice(2));
