// Pin directories on bpffs, made and removed as root without trusting what is already there.
//
// The daemon runs as root. A pin directory that someone else made (bpffs is mounted 1777 unless
// mounted with mode=0700, as the unit does) could hold a symlink to a file anywhere, and a
// recursive removal that follows it deletes that file. So:
// - every directory from just below the bpffs mount down to the pin directory is checked with
//   lstat (never following a link): a directory, on bpffs (statfs magic BPF_FS_MAGIC), owned by
//   root or by this user, not writable by group or other; a missing one is created 0700;
// - removal walks the tree with lstat first and refuses the whole removal if anything in it is
//   not a directory or a bpffs object on bpffs (a symlink, a mount of another filesystem), so
//   nothing is deleted on a guess; then it unlinks the objects and removes the directories.
// Anything refused is XD_ERR_PIN_DIR_UNSAFE with the path, what is wrong and the fix.
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';

/** statfs f_type of bpffs (include/uapi/linux/magic.h). */
export const BPF_FS_MAGIC = 0xcafe4a11;

function onBpffs(p: string): boolean {
  try {
    return fs.statfsSync(p).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

function unsafe(p: string, problem: string, fix: string): XdError {
  return new XdError(
    'XD_ERR_PIN_DIR_UNSAFE',
    `pin directory ${p} ${problem}; nothing is pinned or removed there; fix: ${fix}`,
    { detail: { path: p } },
  );
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unsafe(p, `cannot be examined: ${(err as Error).message}`, 'look at it');
  }
}

/** A directory on bpffs that only root (or this user) can change. `st` is its lstat. */
function checkDir(p: string, st: fs.Stats): void {
  if (st.isSymbolicLink())
    throw unsafe(
      p,
      `is a symlink (to ${readlinkOr(p)}); pins are made and removed only in real directories (a link could point anywhere)`,
      `remove the link (rm ${p}); xdirector creates the directory itself`,
    );
  if (!st.isDirectory()) throw unsafe(p, 'is not a directory', `remove it (rm ${p}) or choose another xdp.pin_dir`);
  if (!onBpffs(p))
    throw unsafe(
      p,
      'is not on bpffs (a mount of another filesystem?)',
      `unmount what is mounted there or choose an xdp.pin_dir on bpffs`,
    );
  const uid = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== uid)
    throw unsafe(
      p,
      `is owned by uid ${st.uid}, not by root or this user (uid ${uid}): that user could swap what the daemon removes`,
      `remove it (rm -r ${p}) after checking what is in it, or chown root ${p}`,
    );
  if ((st.mode & 0o022) !== 0)
    throw unsafe(
      p,
      `is writable by ${st.mode & 0o020 ? 'group' : 'other'} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): another user could put a symlink in it`,
      `chmod go-w ${p} (xdirector creates its directories 0700)`,
    );
}

function readlinkOr(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '?';
  }
}

/**
 * Checks every directory from just below the bpffs mount down to `dir`; with `create`, makes the
 * missing ones (0700). Returns whether `dir` exists (after creating it, true). The bpffs mount
 * itself is not checked (the unit mounts it 0700; a default mount is 1777 with the sticky bit).
 */
export function securePinDir(dir: string, opts: { create: boolean }): boolean {
  const abs = path.resolve(dir);
  const parts = abs.split(path.sep).filter(Boolean);
  let cur: string = path.sep;
  let inBpffs = false;
  for (const part of parts) {
    const parent = cur;
    cur = path.join(cur, part);
    let st = lstatOrUndefined(cur);
    if (!inBpffs) {
      // Above bpffs: system directories (/sys, /sys/fs), not ours to judge. The first directory on
      // bpffs is the mount; only what is below it is checked.
      if (st && !st.isSymbolicLink() && st.isDirectory() && onBpffs(cur)) {
        inBpffs = true;
        continue;
      }
      if (st) continue;
      throw unsafe(
        abs,
        `is not on bpffs (${cur} does not exist)`,
        'mount bpffs (mount -t bpf -o mode=0700 bpf /sys/fs/bpf) or choose an xdp.pin_dir on it',
      );
    }
    if (!st) {
      if (!opts.create) return false;
      if (!onBpffs(parent)) throw unsafe(abs, `is not on bpffs (${parent} is not)`, 'choose an xdp.pin_dir on bpffs');
      try {
        fs.mkdirSync(cur, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
          throw unsafe(cur, `cannot be created: ${(err as Error).message}`, 'look at its parent directory');
      }
      st = fs.lstatSync(cur); // checked again below: someone may have made it first
    }
    checkDir(cur, st);
  }
  if (!inBpffs)
    throw unsafe(
      abs,
      'is not on bpffs',
      'mount bpffs (mount -t bpf -o mode=0700 bpf /sys/fs/bpf) or choose an xdp.pin_dir on it',
    );
  return true;
}

/** What removing `dir` would delete, deepest first; throws before anything is deleted if one entry is not a bpffs object or directory. */
function removalPlan(dir: string, st: fs.Stats, out: { path: string; dir: boolean }[]): void {
  checkDir(dir, st);
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const est = fs.lstatSync(p);
    if (est.isSymbolicLink())
      throw unsafe(
        dir,
        `holds a symlink ${p} -> ${readlinkOr(p)}; pin directories hold only bpffs objects and xdirector never deletes through a link`,
        `look at it and remove the link yourself (rm ${p}), then run the command again`,
      );
    if (est.isDirectory()) {
      removalPlan(p, est, out);
      continue;
    }
    // A pinned map or program is a regular-looking inode of bpffs itself.
    if (!est.isFile() || !onBpffs(p))
      throw unsafe(
        dir,
        `holds ${p}, which is not a bpffs object`,
        `look at it and remove it yourself, then run the command again`,
      );
    out.push({ path: p, dir: false });
  }
  out.push({ path: dir, dir: true });
}

/**
 * What removePinDir(dir) would delete, deepest first (empty when `dir` is missing); throws
 * XD_ERR_PIN_DIR_UNSAFE as removePinDir would. Callers check before they detach anything, so a
 * refused removal leaves the instance as it was.
 */
export function checkRemovable(dir: string): { path: string; dir: boolean }[] {
  const plan: { path: string; dir: boolean }[] = [];
  if (securePinDir(dir, { create: false })) removalPlan(path.resolve(dir), fs.lstatSync(dir), plan);
  return plan;
}

/**
 * Removes a pin directory made by pinMaps/pinProgram: the bpffs objects, then the directories.
 * Missing is fine. Refuses (XD_ERR_PIN_DIR_UNSAFE, nothing deleted) if the directory or one
 * above it is unsafe (securePinDir) or anything in it is a symlink or not a bpffs object.
 */
export function removePinDir(dir: string): void {
  for (const e of checkRemovable(dir)) {
    try {
      if (e.dir) fs.rmdirSync(e.path);
      else fs.unlinkSync(e.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new XdError('XD_ERR_BPF_PIN', `remove ${e.path}: ${(err as Error).message}`, {
          cause: err,
          detail: { path: e.path },
        });
    }
  }
}
