// A small JSON state file that a restart or a later command must be able to trust:
// - writes are atomic: a temp file in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW, 0600),
//   written, fsync'd, renamed over the file, and the directory fsync'd; a crash leaves the old
//   file or the new one, never half;
// - reads never follow a symlink (O_NOFOLLOW) and accept only a regular file owned by this
//   user; anything else, and a file whose content the subclass does not accept, is refused with
//   the path and the fix, and the file is kept as it is (nothing acts on a guess).
// Users: the daemon's drains, maintenance and run-time weights (src/daemon/drains.ts), the
// real-server sysctls a tunnel setup changed (src/realserver/tunnel.ts).
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';

/** What a state file holds, for messages: what it is, an example of its form, what refusing it stops, and what removing it means. */
export interface StateFileKind {
  /** e.g. "drained backends" */
  what: string;
  /** e.g. 'a JSON array of backend names from the config, e.g. ["db2"]' */
  example: string;
  /** What a refused file stops, e.g. "xdirector does not start without knowing its drained backends". */
  refused: string;
  /** What removing it means, e.g. "to start with no backend drained". */
  none: string;
}

/** One state file: safe reads and atomic writes of a small JSON document. */
export abstract class StateFile {
  constructor(
    readonly file: string,
    readonly kind: StateFileKind,
  ) {}

  /** The parsed JSON; undefined when there is no file. Throws XD_ERR_STATE_FILE otherwise. */
  protected readJson(): unknown {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP')
        throw this.refuse(
          'is a symlink; this state is read only from a regular file (a link could point anywhere)',
          err,
        );
      throw this.refuse(`cannot be opened: ${(err as Error).message}`, err);
    }
    let text: string;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw this.refuse('is not a regular file');
      if (typeof process.geteuid === 'function' && st.uid !== process.geteuid())
        throw this.refuse(
          `is owned by uid ${st.uid}, not by this user (uid ${process.geteuid()}); only a file this daemon wrote is trusted`,
        );
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
      const fd = fs.openSync(
        tmp,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        fs.writeFileSync(fd, body);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      // rename() replaces a symlink at the destination, it never writes through it.
      fs.renameSync(tmp, this.file);
    } catch (err) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* not created */
      }
      throw new XdError(
        'XD_ERR_STATE_FILE',
        `write ${this.kind.what} to ${this.file}: ${(err as Error).message}; the previous file is unchanged`,
        { cause: err, detail: { file: this.file } },
      );
    }
    try {
      const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch {
      /* the rename is done; a directory that cannot be fsync'd (some filesystems) only weakens crash safety */
    }
  }

  /** Whether something is at the path (not following a symlink: a link counts, and reading it is refused). */
  exists(): boolean {
    try {
      fs.lstatSync(this.file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.refuse(`cannot be examined: ${(err as Error).message}`, err);
    }
  }

  /** Removes the file (stop --detach); absent is fine. */
  remove(): void {
    try {
      fs.unlinkSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new XdError('XD_ERR_STATE_FILE', `remove ${this.file}: ${(err as Error).message}`, {
          cause: err,
          detail: { file: this.file },
        });
    }
  }

  protected refuse(problem: string, cause?: unknown): XdError {
    const k = this.kind;
    return new XdError(
      'XD_ERR_STATE_FILE',
      `${k.what} file ${this.file} ${problem}; it is kept as it is and ${k.refused}; fix: look at it, then either correct it (${k.example}) or remove it (rm ${this.file}) ${k.none}`,
      { ...(cause === undefined ? {} : { cause }), detail: { file: this.file } },
    );
  }
}
