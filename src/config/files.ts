// Files the config names and the daemon reads later: checked when a config file is loaded
// (check-config, run, reload), so a missing or unreadable one is refused up front with its
// key path instead of failing at run time. The content is read and dropped, never kept or shown.

import * as fs from 'node:fs';
import type { Problem } from './rules';
import { md5KeyOfFile, md5KeyProblem } from './bgp';

/** The HTTP tokens' minimum length (src/api/http.ts refuses shorter ones too). */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Warnings about the files the config names (they do not refuse the config): a token file other
 * users can read (group or world permission bits) hands them the HTTP listener; a password file
 * they can read hands them the monitor account (or the BGP session key).
 */
export function fileWarnings(raw: unknown): string[] {
  const admin = isObj(raw) && isObj(raw.admin) ? raw.admin : undefined;
  const out: string[] = [];
  const monitor = isObj(raw) && isObj(raw.monitor) ? raw.monitor : undefined;
  const bgp = isObj(raw) && isObj(raw.bgp) ? raw.bgp : undefined;
  const secrets: [string, unknown, string][] = [
    ['monitor.password_file', monitor?.password_file, "the monitor account's password"],
  ];
  (Array.isArray(bgp?.neighbours) ? bgp.neighbours : []).forEach((n, i) =>
    secrets.push([`bgp.neighbours[${i}].password_file`, isObj(n) ? n.password_file : undefined, 'the BGP session key']),
  );
  for (const [key, f, what] of secrets) {
    if (typeof f !== 'string' || f === '') continue;
    let mode: number;
    try {
      mode = fs.statSync(f).mode & 0o777;
    } catch {
      continue; /* fileProblems reports it */
    }
    if (mode & 0o077)
      out.push(
        `${key}: ${f} is readable by ${mode & 0o004 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): anyone who reads it has ${what}; chmod 600 ${f}`,
      );
  }
  for (const key of ['http_token_file', 'http_read_token_file'] as const) {
    const f = admin?.[key];
    if (typeof f !== 'string' || f === '') continue;
    let mode: number;
    try {
      mode = fs.statSync(f).mode & 0o777;
    } catch {
      continue; /* fileProblems reports it */
    }
    if (mode & 0o077)
      out.push(
        `admin.${key}: ${f} is readable by ${mode & 0o004 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): anyone who reads it can use the HTTP listener as xdirector; chmod 600 ${f}`,
      );
  }
  const sf = isObj(raw) && isObj(raw.sync) ? raw.sync.key_file : undefined;
  if (typeof sf === 'string' && sf !== '') {
    let mode: number;
    try {
      mode = fs.statSync(sf).mode & 0o777;
    } catch {
      mode = 0;
    }
    if (mode & 0o077)
      out.push(
        `sync.key_file: ${sf} is readable by ${mode & 0o004 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): anyone who reads it can forge sync messages (install flows on every director); chmod 600 ${sf}`,
      );
  }
  return out;
}

/** Problems with the files `raw` (the parsed YAML) names: monitor.password_file, sync.key_file, admin.http_(read_)token_file, bgp.neighbours[].password_file. */
export function fileProblems(raw: unknown): Problem[] {
  const out: Problem[] = [];
  const monitor = isObj(raw) && isObj(raw.monitor) ? raw.monitor : undefined;
  const file = monitor?.password_file;
  if (typeof file === 'string' && file !== '') {
    try {
      fs.readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const fix =
        code === 'ENOENT'
          ? 'create it (mode 0600) with the monitor password on one line, or point password_file at the file that holds it'
          : code === 'EISDIR'
            ? 'give the file that holds the password, not a directory'
            : 'make it readable by the user xdirector runs as (mode 0600, owned by that user)';
      out.push({ path: ['monitor', 'password_file'], message: `cannot read ${file} (${code}): ${fix}` });
    }
  }
  const admin = isObj(raw) && isObj(raw.admin) ? raw.admin : undefined;
  for (const key of ['http_token_file', 'http_read_token_file'] as const) {
    const f = admin?.[key];
    if (typeof f !== 'string' || f === '') continue;
    let token: string;
    try {
      token = fs.readFileSync(f, 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const fix =
        code === 'ENOENT'
          ? `create it with a random token (openssl rand -hex 24 > ${f}; chmod 600 ${f})`
          : 'make it readable by the user xdirector runs as (mode 0600, owned by that user)';
      out.push({ path: ['admin', key], message: `cannot read ${f} (${code}): ${fix}` });
      continue;
    }
    if (token.length < MIN_TOKEN_LENGTH)
      out.push({
        path: ['admin', key],
        message: `the token in ${f} is shorter than ${MIN_TOKEN_LENGTH} characters: use a random one (openssl rand -hex 24 > ${f})`,
      });
  }
  out.push(...syncKeyProblems(raw));
  const bgp = isObj(raw) && isObj(raw.bgp) ? raw.bgp : undefined;
  const neighbours = Array.isArray(bgp?.neighbours) ? bgp.neighbours : [];
  neighbours.forEach((n, i) => {
    const pwFile = isObj(n) ? n.password_file : undefined;
    if (typeof pwFile !== 'string' || pwFile === '') return;
    const path = ['bgp', 'neighbours', i, 'password_file'];
    let text: string;
    try {
      text = fs.readFileSync(pwFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const fix =
        code === 'ENOENT'
          ? 'create it (mode 0600) with the TCP MD5 key on one line, or point password_file at the file that holds it'
          : code === 'EISDIR'
            ? 'give the file that holds the key, not a directory'
            : 'make it readable by the user xdirector runs as (mode 0600, owned by that user)';
      out.push({ path, message: `cannot read ${pwFile} (${code}): ${fix}` });
      return;
    }
    // The key itself is never shown, only what is wrong with it.
    const problem = md5KeyProblem(md5KeyOfFile(text));
    if (problem) out.push({ path, message: `the key in ${pwFile} ${problem}` });
  });
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** sync.key_file: readable, and a key of at least MIN_SYNC_KEY_BYTES (the HMAC key of src/sync). */
function syncKeyProblems(raw: unknown): Problem[] {
  const file = isObj(raw) && isObj(raw.sync) ? raw.sync.key_file : undefined;
  if (typeof file !== 'string' || file === '') return [];
  const path = ['sync', 'key_file'];
  let key: Buffer;
  try {
    key = syncKeyOfFile(fs.readFileSync(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const fix =
      code === 'ENOENT'
        ? `create it with a random key, the same file on every director (openssl rand -hex 32 > ${file}; chmod 600 ${file})`
        : code === 'EISDIR'
          ? 'give the file that holds the key, not a directory'
          : 'make it readable by the user xdirector runs as (mode 0600, owned by that user)';
    return [{ path, message: `cannot read ${file} (${code}): ${fix}` }];
  }
  if (key.length < MIN_SYNC_KEY_BYTES)
    return [
      {
        path,
        message: `the key in ${file} is ${key.length} bytes, shorter than ${MIN_SYNC_KEY_BYTES}: use a random one (openssl rand -hex 32 > ${file})`,
      },
    ];
  return [];
}

export const MIN_SYNC_KEY_BYTES = 16;

/** The sync key of a key file's content: without one trailing line break (echo / an editor adds it). */
export function syncKeyOfFile(content: Buffer): Buffer {
  let end = content.length;
  if (end > 0 && content[end - 1] === 0x0a) end--;
  if (end > 0 && content[end - 1] === 0x0d) end--;
  return content.subarray(0, end);
}
