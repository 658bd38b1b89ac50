// The drained backends, kept on disk so that a restart keeps them.
//
// <dir of admin.socket>/<instance>.drained.json: a JSON array of backend names
// (or address:port keys), mode 0600. A drain is an operator's decision; losing
// it sends new flows to a server someone is working on, so:
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

const FIX = (file: string) => `fix: look at it, then either correct it (a JSON array of backend names from the config, e.g. ["db2"]) or remove it (rm ${file}) to start with no backend drained`;

export class DrainStore {
  constructor(readonly file: string) {}

  /** The file of an instance: beside its admin socket. */
  static forInstance(adminSocket: string, instance: string): DrainStore {
    return new DrainStore(path.join(path.dirname(adminSocket), `${instance}.drained.json`));
  }

  /** The drained names; an empty set when there is no file. Throws XD_ERR_STATE_FILE otherwise. */
  load(): Set<string> {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return new Set();
      if (code === 'ELOOP') throw this.refuse('is a symlink; drains are read only from a regular file (a link could point anywhere)', err);
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
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string' && x.length > 0)) {
      throw this.refuse(`is valid JSON but not a list of backend names: ${JSON.stringify(parsed).slice(0, 80)}`);
    }
    return new Set(parsed as string[]);
  }

  /** Writes the set atomically (temp + fsync + rename + directory fsync). Throws XD_ERR_STATE_FILE; the old file is then unchanged. */
  save(drained: Iterable<string>): void {
    const dir = path.dirname(this.file);
    const body = JSON.stringify([...drained].sort()) + '\n';
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
      throw new XdError('XD_ERR_STATE_FILE', `write drained backends to ${this.file}: ${(err as Error).message}; the previous file is unchanged`, { cause: err, detail: { file: this.file } });
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

  private refuse(problem: string, cause?: unknown): XdError {
    return new XdError('XD_ERR_STATE_FILE', `drained backends file ${this.file} ${problem}; it is kept as it is and xdirector does not start without knowing which backends are drained; ${FIX(this.file)}`, { ...(cause === undefined ? {} : { cause }), detail: { file: this.file } });
  }
}
