// shape.ts: measures the shape of the code the same way before and after a refactoring.
//
//   node dist/scripts/shape.js functions [--top N] [DIR...]   # the N longest functions of each folder (default 10; bpf src native)
//   node dist/scripts/shape.js verifier [--object dist/bpf/xdirector.bpf.o]
//   node dist/scripts/shape.js stack [--object dist/bpf/xdirector.bpf.o] [--top N]
//
// functions: TypeScript through the compiler's own parser (functions, methods, arrows and
// constructors; a nested function counts inside its parent too); C and C++ by brace matching
// at the top level (comments and strings skipped, `namespace x {` and `extern "C" {` looked
// through). Length is lines from the signature's first line to the closing brace, and of those
// the lines that hold code (not blank, not only comment).
//
// verifier: loads the object's programs with their .rodata defaults (through the addon, with the
// verifier's summary log, BPF_LOG_STATS) and prints the verifier's `processed N insns` line for each.
//
// stack: the call chains of each program, deepest first, with each subprogram's stack depth as
// the verifier found it and rounded up to 32 bytes, as Linux 6.1's check_max_stack_depth() adds
// them up against its 512-byte limit (later kernels do not round; the chain must fit both).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import ts from 'typescript';
import { BpfObject } from '../src/bpf/object';

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

/** The kernel's limit on a call chain's stack (MAX_BPF_STACK). */
export const MAX_BPF_STACK = 512;
/** Linux 6.1 rounds each frame up to this before adding (round_up(depth, 32)). */
export const STACK_FRAME_ROUND = 32;

export interface StackFrame {
  name: string;
  /** The verifier's stack depth of the subprogram, bytes. */
  depth: number;
  /** Rounded up to STACK_FRAME_ROUND (at least one unit, as 6.1 counts an empty frame). */
  rounded: number;
}

export interface StackChain {
  frames: StackFrame[];
  /** Sum of the rounded frames. */
  total: number;
}

/** The verifier's `stack depth A+B+...` line: one depth per subprogram, in subprogram order. */
export function parseStackDepths(log: string): number[] {
  const m = /^stack depth ([\d+]+)$/m.exec(log);
  if (!m)
    throw new Error(`no "stack depth" line in the verifier's log: ${log.trim().split('\n').slice(-3).join(' | ')}`);
  return m[1].split('+').map(Number);
}

/**
 * `bpftool prog dump xlated` of a loaded program: its subprograms in order (each starts with its
 * BTF signature line, `int name(args):`) and the calls each makes (`call pc+N#bpf_prog_TAG_name`).
 */
export function parseXlated(text: string): { funcs: string[]; calls: Map<string, Set<string>> } {
  const funcs: string[] = [];
  const calls = new Map<string, Set<string>>();
  let cur: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^[A-Za-z_][^;]*?\b([A-Za-z_]\w*)\(.*\):$/.exec(line);
    if (head) {
      cur = head[1];
      funcs.push(cur);
      calls.set(cur, new Set());
      continue;
    }
    const call = /\bcall pc[+-]\d+#bpf_prog_[0-9a-f]+_(\w+)/.exec(line);
    if (call && cur !== undefined) calls.get(cur)!.add(call[1]);
  }
  return { funcs, calls };
}

/** Every call chain from `entry`, deepest (by rounded total) first. */
export function stackChains(
  depths: ReadonlyMap<string, number>,
  calls: ReadonlyMap<string, ReadonlySet<string>>,
  entry: string,
): StackChain[] {
  const out: StackChain[] = [];
  const frame = (name: string): StackFrame => {
    const depth = depths.get(name);
    if (depth === undefined) throw new Error(`no stack depth for subprogram ${name}`);
    return { name, depth, rounded: Math.ceil(Math.max(depth, 1) / STACK_FRAME_ROUND) * STACK_FRAME_ROUND };
  };
  const walk = (name: string, path: StackFrame[]): void => {
    if (path.some((f) => f.name === name))
      throw new Error(`recursive call chain: ${[...path.map((f) => f.name), name].join(' -> ')}`);
    const here = [...path, frame(name)];
    const next = [...(calls.get(name) ?? [])];
    if (next.length === 0) out.push({ frames: here, total: here.reduce((a, f) => a + f.rounded, 0) });
    for (const n of next) walk(n, here);
  };
  walk(entry, []);
  return out.sort((a, b) => b.total - a.total);
}

export function formatChain(c: StackChain): string {
  return `${c.total} = ${c.frames.map((f) => (f.depth === f.rounded ? `${f.name} ${f.depth}` : `${f.name} ${f.depth}->${f.rounded}`)).join(' + ')}`;
}

/**
 * Loads the object keeping the verifier's summary of each program, with the connection sync hooks
 * on (sync_export = 1, as a daemon with `sync:` runs it): the translated program that bpftool
 * reads back has no code a constant global made dead, so with the hooks off their calls (which
 * Linux 6.1 counts all the same) would be missing from the call graph.
 */
export async function loadWithStats(object: string): Promise<BpfObject> {
  return BpfObject.load(object, { verifierStats: true, globals: { sync_export: 1 } });
}

/** The call chains of each program of a loaded object (bpftool reads its translated code). */
export function programChains(obj: BpfObject): { program: string; chains: StackChain[] }[] {
  return obj.programs().map((p) => {
    const log = obj.verifierLog(p.name) ?? '';
    const depths = parseStackDepths(log);
    const id = obj.program(p.name).id;
    const r = spawnSync('bpftool', ['prog', 'dump', 'xlated', 'id', String(id)], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    if (r.status !== 0)
      throw new Error(`bpftool prog dump xlated id ${id} failed (exit ${r.status}): ${r.stderr.trim()}`);
    const { funcs, calls } = parseXlated(r.stdout);
    if (funcs.length !== depths.length) {
      throw new Error(
        `program ${p.name}: bpftool lists ${funcs.length} subprograms (${funcs.join(', ')}), the verifier ${depths.length} stack depths (${depths.join('+')})`,
      );
    }
    return { program: p.name, chains: stackChains(new Map(funcs.map((f, i) => [f, depths[i]])), calls, funcs[0]) };
  });
}

async function verifier(object: string): Promise<void> {
  // The object's .rodata defaults (the daemon may set them otherwise at run time), as before.
  const obj = await BpfObject.load(object, { verifierStats: true });
  try {
    for (const p of obj.programs()) {
      const line = /^processed \d+ insns .*$/m.exec(obj.verifierLog(p.name) ?? '');
      if (!line) throw new Error(`${object}: no "processed N insns" line in the verifier's log of ${p.name}`);
      console.log(line[0]);
    }
  } finally {
    obj.close();
  }
}

async function stack(object: string, top: number): Promise<void> {
  const obj = await loadWithStats(object);
  try {
    for (const { program, chains } of programChains(obj)) {
      console.log(
        `${program}: ${chains.length} call chains, the ${Math.min(top, chains.length)} deepest (bytes, each frame rounded up to ${STACK_FRAME_ROUND}; limit ${MAX_BPF_STACK})`,
      );
      for (const c of chains.slice(0, top)) console.log(`  ${formatChain(c)}`);
    }
  } finally {
    obj.close();
  }
}

async function main(argv: string[]): Promise<void> {
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
    await verifier(path.resolve(ROOT, opt('--object', 'dist/bpf/xdirector.bpf.o')));
  } else if (cmd === 'stack') {
    const object = path.resolve(ROOT, opt('--object', 'dist/bpf/xdirector.bpf.o'));
    await stack(object, Number(opt('--top', '5')));
  } else {
    console.error(
      'usage: node dist/scripts/shape.js functions [--top N] [DIR...] | verifier [--object FILE] | stack [--object FILE] [--top N]',
    );
    process.exit(2);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`shape: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
