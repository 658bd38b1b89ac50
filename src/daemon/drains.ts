// The operator's run-time decisions about backends, kept on disk so that a restart keeps them:
//
// <dir of admin.socket>/<instance>.drained.json: drained backends, a JSON array of targets;
// <dir of admin.socket>/<instance>.maint.json: backends in maintenance, the same form;
// <dir of admin.socket>/<instance>.weights.json: run-time weights, a JSON object target -> weight.
// A target is BACKEND (every service) or SERVICE/BACKEND (one service), BACKEND a name or an
// address:port key (src/desired/targets.ts). Each file is mode 0600. A drain is an operator's
// decision; losing it sends new flows to a server someone is working on, so:
// - writes are atomic: a temp file in the same directory (O_CREAT|O_EXCL|
//   O_NOFOLLOW, 0600), written, fsync'd, renamed over the file, and the
//   directory fsync'd; a crash leaves the old file or the new one, never half;
// - reads never follow a symlink (O_NOFOLLOW) and accept only a regular file
//   owned by this user; anything else, and a file that does not parse as a
//   list of names, is refused with the path and the fix. The file is kept as
//   it is: the daemon does not start on a guess.
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';
import { WEIGHT_MAX } from '../config/schema';

/** What each file holds: its name's suffix, what it is called in messages, an example of its form, and what an absent file means. */
const KINDS = {
  drained: { what: 'drained backends', example: 'a JSON array of backend names from the config, e.g. ["db2"] or ["mysql/db2"]', none: 'with no backend drained' },
  maint: { what: 'backends in maintenance', example: 'a JSON array of backend names from the config, e.g. ["db2"] or ["mysql/db2"]', none: 'with no backend in maintenance' },
  weights: { what: 'run-time weights', example: 'a JSON object of backend name -> weight, e.g. {"mysql/db2": 3}', none: 'with the config\'s weights' },
} as const;
export type StateFileKind = keyof typeof KINDS;

/** One state file: safe reads and atomic writes of a small JSON document. */
abstract class StateFile {
  constructor(readonly file: string, readonly kind: StateFileKind) {}

  protected static pathFor(adminSocket: string, instance: string, kind: StateFileKind): string {
    return path.join(path.dirname(adminSocket), `${instance}.${kind}.json`);
  }

  /** The parsed JSON; undefined when there is no file. Throws XD_ERR_STATE_FILE otherwise. */
  protected readJson(): unknown {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') throw this.refuse('is a symlink; this state is read only from a regular file (a link could point anywhere)', err);
      throw this.refuse(`cannot be opened: ${(err as Error).message}`, err);
    }
    let text: string;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw this.refuse('is not a regular file');
      if (typeof process.geteuid === 'function' && st.uid !== process.geteuid()) throw this.refuse(`is owned by uid ${st.uid}, not by this user (uid ${process.geteuid()}); only a file this daemon wrote is trusted`);
      text = fs.readFileSync(fd, 'utf8');
    } catch (err) {
      if (err instanceof XdError) throw err;
      throw this.refuse(`cannot be read: ${(err as Error).message}`, err);
    } finally {
      fs.closeSync(fd);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw this.refuse(`is not valid JSON (${(err as Error).message})`, err);
    }
    return parsed;
  }

  /** Writes the document atomically (temp + fsync + rename + directory fsync). Throws XD_ERR_STATE_FILE; the old file is then unchanged. */
  protected writeJson(doc: unknown): void {
    const dir = path.dirname(this.file);
    const body = JSON.stringify(doc) + '\n';
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.${Date.now()}.tmp`);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      try {
        fs.writeFileSync(fd, body);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      // rename() replaces a symlink at the destination, it never writes through it.
      fs.renameSync(tmp, this.file);
    } catch (err) {
      try { fs.unlinkSync(tmp); } catch { /* not created */ }
      throw new XdError('XD_ERR_STATE_FILE', `write ${KINDS[this.kind].what} to ${this.file}: ${(err as Error).message}; the previous file is unchanged`, { cause: err, detail: { file: this.file } });
    }
    try {
      const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
    } catch { /* the rename is done; a directory that cannot be fsync'd (some filesystems) only weakens crash safety */ }
  }

  /** Removes the file (stop --detach); absent is fine. */
  remove(): void {
    try { fs.unlinkSync(this.file); } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new XdError('XD_ERR_STATE_FILE', `remove ${this.file}: ${(err as Error).message}`, { cause: err, detail: { file: this.file } });
    }
  }

  protected refuse(problem: string, cause?: unknown): XdError {
    const k = KINDS[this.kind];
    return new XdError('XD_ERR_STATE_FILE', `${k.what} file ${this.file} ${problem}; it is kept as it is and xdirector does not start without knowing its ${k.what}; fix: look at it, then either correct it (${k.example}) or remove it (rm ${this.file}) to start ${k.none}`, { ...(cause === undefined ? {} : { cause }), detail: { file: this.file } });
  }
}

/** A set of targets: drained backends (`drained`) or backends in maintenance (`maint`). */
export class DrainStore extends StateFile {
  constructor(file: string, kind: 'drained' | 'maint' = 'drained') { super(file, kind); }

  /** The file of an instance: beside its admin socket. */
  static forInstance(adminSocket: string, instance: string, kind: 'drained' | 'maint' = 'drained'): DrainStore {
    return new DrainStore(StateFile.pathFor(adminSocket, instance, kind), kind);
  }

  /** The targets; an empty set when there is no file. Throws XD_ERR_STATE_FILE otherwise. */
  load(): Set<string> {
    const parsed = this.readJson();
    if (parsed === undefined) return new Set();
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string' && x.length > 0)) {
      throw this.refuse(`is valid JSON but not a list of backend names: ${JSON.stringify(parsed).slice(0, 80)}`);
    }
    return new Set(parsed as string[]);
  }

  /** Writes the set atomically. Throws XD_ERR_STATE_FILE; the old file is then unchanged. */
  save(targets: Iterable<string>): void {
    this.writeJson([...targets].sort());
  }
}

/** Run-time weights: target -> weight (0..WEIGHT_MAX, the config's rule). */
export class WeightStore extends StateFile {
  constructor(file: string) { super(file, 'weights'); }

  static forInstance(adminSocket: string, instance: string): WeightStore {
    return new WeightStore(StateFile.pathFor(adminSocket, instance, 'weights'));
  }

  /** The weights; empty when there is no file. Throws XD_ERR_STATE_FILE otherwise. */
  load(): Map<string, number> {
    const parsed = this.readJson();
    if (parsed === undefined) return new Map();
    const ok = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      && Object.entries(parsed).every(([k, v]) => k.length > 0 && Number.isInteger(v) && (v as number) >= 0 && (v as number) <= WEIGHT_MAX);
    if (!ok) throw this.refuse(`is valid JSON but not an object of backend name -> weight (an integer from 0 to ${WEIGHT_MAX}): ${JSON.stringify(parsed).slice(0, 80)}`);
    return new Map(Object.entries(parsed as Record<string, number>));
  }

  /** Writes the weights atomically. Throws XD_ERR_STATE_FILE; the old file is then unchanged. */
  save(weights: ReadonlyMap<string, number>): void {
    this.writeJson(Object.fromEntries([...weights].sort(([a], [b]) => a.localeCompare(b))));
  }
}
