// keepalived.conf → a tree of statements. Pure apart from reading the file and its includes.
//
// The syntax, as keepalived's parser reads it (keepalived.conf(5), lib/parser.c):
// - one statement per line: a keyword and its arguments separated by blanks; "double quotes"
//   keep blanks inside one argument;
// - `#` or `!` starts a comment when it starts a word;
// - `keyword args {` opens a block closed by `}`; the `{` may stand alone on the next line and a
//   short block may sit on one line (`unicast_peer { 10.0.0.2 }`);
// - `include GLOB` reads files in place (a relative pattern is relative to the including file's
//   directory), in sorted order; a pattern that matches nothing is an error here;
// - `$NAME=value` defines a parameter that `$NAME` / `${NAME}` later expand to;
// - a line starting `@ID` is read only by the keepalived started with `-i ID` (its config id,
//   the host name by default), one starting `@^ID` by every other.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XdError } from '../errors';

/** What parsing needs besides the text: keepalived's config id (conditional lines) and where warnings go. */
export interface ParseOptions {
  /** The `-i` config id of the keepalived whose view to read; default: this host's name, as keepalived. */
  configId?: string;
  /** Warnings (a stray "}", conditional lines read by the default id) are added here. */
  warnings?: string[];
}

interface Ctx {
  configId: string;
  explicitId: boolean;
  warnings: string[];
  conditional: boolean;
}

function ctxOf(o: ParseOptions): Ctx {
  return {
    configId: o.configId ?? os.hostname().split('.')[0]!,
    explicitId: o.configId !== undefined,
    warnings: o.warnings ?? [],
    conditional: false,
  };
}

export interface Stmt {
  keyword: string;
  args: string[];
  /** Present when the statement opened a block. */
  children?: Stmt[];
  file: string;
  line: number;
}

interface Line {
  words: string[];
  file: string;
  line: number;
}

/** Split one line into words: quotes, comments, and braces as words of their own. */
export function splitWords(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#' || c === '!') break;
    if (c === '{' || c === '}') {
      out.push(c);
      i++;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      const stop = end < 0 ? text.length : end;
      out.push(text.slice(i + 1, stop));
      i = stop + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !' \t\r{}"'.includes(text[j]!)) j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files matching an include pattern (wildcards in the last path component only, as keepalived's users write them). */
function expandInclude(pattern: string, from: string): string[] {
  const abs = path.isAbsolute(pattern) ? pattern : path.join(path.dirname(from), pattern);
  const dir = path.dirname(abs);
  const base = path.basename(abs);
  if (!/[*?]/.test(base)) return fs.existsSync(abs) ? [abs] : [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const re = globToRegExp(base);
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

function expandParams(words: string[], params: Map<string, string>): string[] {
  return words.map((w) =>
    w.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a?: string, b?: string) => params.get((a ?? b)!) ?? all),
  );
}

function readLines(
  file: string,
  out: Line[],
  params: Map<string, string>,
  depth: number,
  seen: string[],
  ctx: Ctx,
): void {
  if (depth > 16)
    throw new XdError(
      'XD_ERR_CONFIG_PARSE',
      `${file}: includes nested more than 16 deep (${seen.join(' → ')}): an include loop?`,
    );
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new XdError(
      'XD_ERR_CONFIG_READ',
      `${seen.length ? `${seen[seen.length - 1]}: include ` : ''}${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  eachStatement(text, params, ctx, (words, line) => {
    if (words[0] === 'include') {
      if (words.length < 2)
        throw new XdError('XD_ERR_CONFIG_PARSE', `${file}:${line}: include needs a file name or pattern`);
      for (const pattern of words.slice(1)) {
        const files = expandInclude(pattern, file);
        if (files.length === 0)
          throw new XdError(
            'XD_ERR_CONFIG_READ',
            `${file}:${line}: include ${pattern}: no file matches (relative patterns are read from ${path.dirname(file)})`,
          );
        for (const f of files) readLines(f, out, params, depth + 1, [...seen, `${file}:${line}`], ctx);
      }
      return;
    }
    out.push({ words, file, line });
  });
}

/**
 * Walks keepalived text line by line: a `$NAME = value` line defines a parameter (into
 * `params`), any other line is split into words with the parameters expanded, and each
 * non-empty one goes to `onStatement` with its 1-based line number.
 */
function eachStatement(
  text: string,
  params: Map<string, string>,
  ctx: Ctx,
  onStatement: (words: string[], line: number) => void,
): void {
  text.split('\n').forEach((whole, k) => {
    let raw = whole;
    const cond = /^\s*@(\^?)(\S+)\s+(.*)$/.exec(raw);
    if (cond) {
      ctx.conditional = true;
      const match = cond[2] === ctx.configId;
      if (cond[1] === '^' ? match : !match) return;
      raw = cond[3]!;
    }
    const def = /^\s*\$(\w+)\s*=\s*(.*?)\s*$/.exec(raw);
    if (def) {
      params.set(def[1]!, def[2]!);
      return;
    }
    const words = expandParams(splitWords(raw), params);
    if (words.length === 0) return;
    onStatement(words, k + 1);
  });
}

/**
 * Parse a keepalived.conf (and everything it includes) into statements. What keepalived itself
 * only warns about (a stray "}") is added to `warnings` and skipped, as keepalived does.
 */
export function parseKeepalivedFile(file: string, opts: ParseOptions = {}): Stmt[] {
  const lines: Line[] = [];
  const ctx = ctxOf(opts);
  readLines(path.resolve(file), lines, new Map(), 0, [], ctx);
  conditionalWarning(ctx);
  return buildTree(lines, ctx.warnings);
}

function conditionalWarning(ctx: Ctx): void {
  if (ctx.conditional && !ctx.explicitId)
    ctx.warnings.push(
      `the file has conditional lines (@ID): read as the keepalived of this host (${ctx.configId}) would; give --config-id ID for another keepalived's view`,
    );
}

/** Parse keepalived.conf text (no includes allowed: they need a file to be relative to). */
export function parseKeepalivedText(text: string, fileName = 'keepalived.conf', opts: ParseOptions = {}): Stmt[] {
  const lines: Line[] = [];
  const params = new Map<string, string>();
  const ctx = ctxOf(opts);
  eachStatement(text, params, ctx, (words, line) => {
    if (words[0] === 'include')
      throw new XdError(
        'XD_ERR_CONFIG_PARSE',
        `${fileName}:${line}: include needs a file on disk: parse the file instead`,
      );
    lines.push({ words, file: fileName, line });
  });
  conditionalWarning(ctx);
  return buildTree(lines, ctx.warnings);
}

function buildTree(lines: Line[], warnings: string[]): Stmt[] {
  // Flatten to a token stream that remembers line boundaries, then read statements recursively.
  type Tok = { w: string; file: string; line: number; eol: boolean };
  const toks: Tok[] = [];
  for (const l of lines)
    l.words.forEach((w, k) => toks.push({ w, file: l.file, line: l.line, eol: k === l.words.length - 1 }));
  let i = 0;
  const block = (open?: Tok): Stmt[] => {
    const out: Stmt[] = [];
    while (i < toks.length) {
      const t = toks[i]!;
      if (t.w === '}') {
        i++;
        // keepalived (2.2.7 -t) reports an unexpected "}" and reads on; so does this.
        if (!open) {
          warnings.push(`${t.file}:${t.line}: "}" closes no block: ignored (keepalived ignores it too); remove it`);
          continue;
        }
        return out;
      }
      if (t.w === '{') {
        // A block with no keyword: keepalived reads it as a nested list; keep its contents.
        i++;
        out.push({ keyword: '', args: [], children: block(t), file: t.file, line: t.line });
        continue;
      }
      const st: Stmt = { keyword: t.w, args: [], file: t.file, line: t.line };
      i++;
      let eol = t.eol;
      while (!eol && i < toks.length && toks[i]!.w !== '{' && toks[i]!.w !== '}') {
        st.args.push(toks[i]!.w);
        eol = toks[i]!.eol;
        i++;
      }
      // `{` on this line, or alone at the start of the next one, opens the statement's block.
      if (i < toks.length && toks[i]!.w === '{') {
        const o = toks[i]!;
        i++;
        st.children = block(o);
      }
      out.push(st);
    }
    if (open)
      throw new XdError('XD_ERR_CONFIG_PARSE', `${open.file}:${open.line}: "{" is never closed: add the missing "}"`);
    return out;
  };
  return block();
}
