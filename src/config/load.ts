// Config file -> Config: YAML (parseDocument, so problems carry line numbers) -> zod schema
// (field rules) + crossCheck (rules across fields) -> cross-field defaults. Every problem is
// collected and reported in one XdError whose message has one line per problem:
//   lab.yaml: services[1].backends[0].weight: must be an integer >= 0, got 1.5 (line 14)
// Pure apart from loadConfig's reads: the config file and the files it names (src/config/files.ts).

import * as fs from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { XdError } from '../errors';
import { configSchema, Config } from './schema';
import { crossCheck, finish, pathText, PathItem, Problem } from './rules';
import { fileProblems, fileWarnings } from './files';
import { scriptProblems } from './script';
import { show, suggest } from './fields';

export interface LocatedProblem {
  /** Key path as text: "services[1].backends[0].weight" ("" for the whole file). */
  path: string;
  /** The problem, e.g. "must be an integer >= 0, got 1.5". */
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}

type AnySchema = { _zod: { def: Record<string, any> } };

/** Follow wrappers (optional, default, pipe/preprocess, ...) to the object or array underneath. */
function unwrap(s: AnySchema | undefined): AnySchema | undefined {
  for (let i = 0; s && i < 20; i++) {
    const def = s._zod.def;
    switch (def.type) {
      case 'object':
      case 'array':
        return s;
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        s = def.innerType;
        break;
      case 'pipe': {
        const a = unwrap(def.in);
        if (a) return a;
        s = def.out;
        break;
      }
      default:
        return undefined;
    }
  }
  return undefined;
}

/** The keys the schema allows at `path` (for "did you mean"). */
function keysAt(path: readonly PathItem[]): string[] {
  let s: AnySchema | undefined = unwrap(configSchema as unknown as AnySchema);
  for (const p of path) {
    if (!s) return [];
    const def = s._zod.def;
    if (def.type === 'object' && typeof p === 'string') s = unwrap(def.shape[p]);
    else if (def.type === 'array' && typeof p === 'number') s = unwrap(def.element);
    else return [];
  }
  return s && s._zod.def.type === 'object' ? Object.keys(s._zod.def.shape) : [];
}

const article = (w: string) => (/^[aeiou]/.test(w) ? `an ${w}` : `a ${w}`);
/** zod type names in YAML words. */
const yamlType = (t: string) =>
  (({ object: 'map', array: 'list', int: 'integer', boolean: 'true or false' }) as Record<string, string>)[t] ?? t;

/** zod issues (ours are already worded; health.ts/vrrp.ts use zod's own) -> problems. */
function fromZod(issues: readonly z.core.$ZodIssue[]): (Problem & { atKey?: boolean })[] {
  const out: (Problem & { atKey?: boolean })[] = [];
  for (const iss of issues) {
    const path = iss.path.filter((p): p is PathItem => typeof p === 'string' || typeof p === 'number');
    const input = (iss as { input?: unknown }).input;
    switch (iss.code) {
      case 'unrecognized_keys': {
        const known = keysAt(path);
        for (const k of iss.keys) {
          const hint = suggest(k, known);
          out.push({
            path: [...path, k],
            atKey: true,
            message: `unknown key${hint ? `; did you mean "${hint}"?` : known.length ? ` (allowed here: ${known.join(', ')})` : ''}`,
          });
        }
        break;
      }
      case 'invalid_type':
        out.push({
          path,
          message:
            iss.message && !iss.message.startsWith('Invalid input')
              ? iss.message
              : input === undefined || iss.expected === 'nonoptional'
                ? 'is required'
                : `must be ${iss.expected === 'boolean' ? 'true or false' : article(yamlType(iss.expected))}, got ${show(input)}`,
        });
        break;
      case 'too_small':
      case 'too_big': {
        const custom = iss.message && !/^(Too small|Too big)/.test(iss.message);
        const bound = iss.code === 'too_small' ? iss.minimum : iss.maximum;
        const cmp =
          iss.code === 'too_small' ? (iss.inclusive === false ? '>' : '>=') : iss.inclusive === false ? '<' : '<=';
        let m: string;
        if (custom) m = iss.message;
        else if (iss.origin === 'string')
          m =
            iss.code === 'too_small'
              ? Number(bound) <= 1
                ? 'must not be empty'
                : `must be at least ${bound} characters`
              : `must be at most ${bound} characters`;
        else if (iss.origin === 'array')
          m =
            iss.code === 'too_small'
              ? `needs at least ${bound} entr${Number(bound) === 1 ? 'y' : 'ies'}`
              : `has more than ${bound} entries`;
        else m = `must be ${cmp} ${bound}`;
        out.push({ path, message: input !== undefined && typeof input !== 'object' ? `${m}, got ${show(input)}` : m });
        break;
      }
      case 'invalid_value':
        out.push({
          path,
          message: `must be ${iss.values.length === 1 ? JSON.stringify(iss.values[0]) : `one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`}, got ${show(input)}`,
        });
        break;
      case 'invalid_union': {
        if (iss.message && iss.message !== 'Invalid input') {
          out.push({ path, message: iss.message });
          break;
        }
        const expected = [
          ...new Set(
            iss.errors
              .flat()
              .filter((e) => e.code === 'invalid_type')
              .map((e) => yamlType((e as { expected: string }).expected)),
          ),
        ];
        out.push({
          path,
          message: expected.length
            ? `must be ${expected.map(article).join(' or ')}, got ${show(input)}`
            : `is not valid here, got ${show(input)}`,
        });
        break;
      }
      default:
        out.push({ path, message: iss.message });
    }
  }
  return out;
}

function lineOf(doc: Document, lc: LineCounter, path: readonly PathItem[], atKey: boolean): number | undefined {
  const pos = (n: unknown): number | undefined => {
    const r = (n as YamlNode | undefined)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  if (atKey && path.length > 0) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const last = path[path.length - 1];
      const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last);
      if (pair) return pos(pair.key);
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (node !== undefined && node !== null && (n === path.length || isMap(node) || isSeq(node) || n === 0)) {
      // For a missing key, point at its parent map (where it should be added).
      const p = pos(node);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}

function fail(
  code: 'XD_ERR_CONFIG_PARSE' | 'XD_ERR_CONFIG_INVALID',
  fileName: string,
  problems: LocatedProblem[],
): XdError {
  const lines = problems.map(
    (p) => `${fileName}: ${p.path ? `${p.path}: ` : ''}${p.message}${p.line !== undefined ? ` (line ${p.line})` : ''}`,
  );
  return new XdError(code, lines.join('\n'), { detail: { file: fileName, problems } });
}

/**
 * Parse and validate config text. `fileName` names the file in messages.
 * Throws XdError XD_ERR_CONFIG_PARSE (not YAML) or XD_ERR_CONFIG_INVALID (rules), listing every problem.
 * `checkFiles` also refuses files the config names that cannot be read (loadConfig sets it).
 */
export function parseConfig(text: string, fileName: string, opts: { checkFiles?: boolean } = {}): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw fail(
      'XD_ERR_CONFIG_PARSE',
      fileName,
      doc.errors.map((e) => {
        const line = e.linePos?.[0]?.line;
        // yaml's message ends with a caret excerpt; keep its first line (the line number is added by fail()).
        const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return {
          path: '',
          message: `not valid YAML: ${first}${e.linePos ? `, column ${e.linePos[0].col}` : ''}`,
          line,
        };
      }),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (raw === null || raw === undefined) {
    throw fail('XD_ERR_CONFIG_INVALID', fileName, [
      { path: '', message: 'the file is empty: it needs at least instance, interface and services' },
    ]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw fail('XD_ERR_CONFIG_INVALID', fileName, [
      {
        path: '',
        message: `must be a map of settings (instance, interface, services, ...), got ${show(raw)}`,
        line: 1,
      },
    ]);
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  const problems: (Problem & { atKey?: boolean })[] = parsed.success ? [] : fromZod(parsed.error.issues);
  problems.push(...crossCheck(raw));
  if (opts.checkFiles) problems.push(...fileProblems(raw), ...scriptProblems(raw));
  if (problems.length > 0) {
    const located = problems.map((p) => ({
      path: pathText(p.path),
      message: p.message,
      line: lineOf(doc, lc, p.path, p.atKey === true),
    }));
    // File order; problems without a line last; identical lines once.
    located.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    const seen = new Set<string>();
    throw fail(
      'XD_ERR_CONFIG_INVALID',
      fileName,
      located.filter((p) => {
        const k = `${p.path}\0${p.message}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      }),
    );
  }
  try {
    const cfg = finish(parsed.data!, fileName);
    if (opts.checkFiles) cfg.warnings.push(...fileWarnings(raw));
    return cfg;
  } catch (err) {
    throw new XdError('XD_ERR_CONFIG_INVALID', `${fileName}: ${(err as Error).message}`, {
      cause: err,
      detail: { file: fileName },
    });
  }
}

/** Read and validate a config file. Throws XdError XD_ERR_CONFIG_READ / _PARSE / _INVALID. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const fix =
      e.code === 'ENOENT'
        ? ': check the path given with -c'
        : e.code === 'EACCES' || e.code === 'EPERM'
          ? ': run as root or make the file readable'
          : e.code === 'EISDIR'
            ? ': give the config file, not its directory'
            : '';
    const what = e.message.replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
    throw new XdError(
      'XD_ERR_CONFIG_READ',
      `${path}: cannot read the config file: ${what}${e.code ? ` (${e.code})` : ''}${fix}`,
      { cause: err, detail: { file: path, errno: e.errno, code: e.code } },
    );
  }
  return parseConfig(text, path, { checkFiles: true });
}
