// The operator's run-time decisions about backends, kept on disk so that a stop, start or reboot
// keeps them. They live in the state directory (config state_dir, default /var/lib/xdirector, the
// unit's StateDirectory), not beside the admin socket in /run, which a reboot empties:
//
// <state_dir>/<instance>.drained.json: drained backends, a JSON array of targets;
// <state_dir>/<instance>.maint.json: backends in maintenance, the same form;
// <state_dir>/<instance>.weights.json: run-time weights, a JSON object target -> weight;
// <state_dir>/<instance>.director-drained.json: ["director"] while the director is drained (BGP).
// A target is BACKEND (every service) or SERVICE/BACKEND (one service), BACKEND a name or an
// address:port key (src/desired/targets.ts). Each file is mode 0600. A drain is an operator's
// decision; losing it sends new flows to a server someone is working on, so each is a StateFile
// (src/state/file.ts: atomic writes, no symlinks, owner check) and a file that does not parse is
// refused with the path and the fix: the daemon does not start on a guess. Files an older version
// kept beside the admin socket are moved here at start (migrateStateFiles).
import path from 'node:path';
import { WEIGHT_MAX } from '../config';
import { StateFile, type StateFileKind } from '../state/file';

/** What each file holds: its name's suffix, what it is called in messages, an example of its form, and what an absent file means. */
const KINDS = {
  drained: kind(
    'drained backends',
    'a JSON array of backend names from the config, e.g. ["db2"] or ["mysql/db2"]',
    'with no backend drained',
  ),
  maint: kind(
    'backends in maintenance',
    'a JSON array of backend names from the config, e.g. ["db2"] or ["mysql/db2"]',
    'with no backend in maintenance',
  ),
  weights: kind(
    'run-time weights',
    'a JSON object of backend name -> weight, e.g. {"mysql/db2": 3}',
    "with the config's weights",
  ),
  'director-drained': kind('director drain', '["director"]', 'with the director not drained'),
};
type DaemonFile = keyof typeof KINDS;

function kind(what: string, example: string, none: string): StateFileKind {
  return { what, example, refused: `xdirector does not start without knowing its ${what}`, none: `to start ${none}` };
}

/** The file of an instance in `dir` (the state directory). */
function pathFor(dir: string, instance: string, k: DaemonFile): string {
  return path.join(dir, `${instance}.${k}.json`);
}

type SetKind = 'drained' | 'maint' | 'director-drained';

/** A set of targets: drained backends (`drained`), backends in maintenance (`maint`), or ["director"] (`director-drained`). */
export class DrainStore extends StateFile {
  constructor(file: string, kind: SetKind = 'drained') {
    super(file, KINDS[kind]);
  }

  /** The file of an instance in the state directory `dir`. */
  static forInstance(dir: string, instance: string, kind: SetKind = 'drained'): DrainStore {
    return new DrainStore(pathFor(dir, instance, kind), kind);
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
  constructor(file: string) {
    super(file, KINDS.weights);
  }

  static forInstance(dir: string, instance: string): WeightStore {
    return new WeightStore(pathFor(dir, instance, 'weights'));
  }

  /** The weights; empty when there is no file. Throws XD_ERR_STATE_FILE otherwise. */
  load(): Map<string, number> {
    const parsed = this.readJson();
    if (parsed === undefined) return new Map();
    const ok =
      typeof parsed === 'object' &&
      parsed !== null &&
      !Array.isArray(parsed) &&
      Object.entries(parsed).every(
        ([k, v]) => k.length > 0 && Number.isInteger(v) && (v as number) >= 0 && (v as number) <= WEIGHT_MAX,
      );
    if (!ok)
      throw this.refuse(
        `is valid JSON but not an object of backend name -> weight (an integer from 0 to ${WEIGHT_MAX}): ${JSON.stringify(parsed).slice(0, 80)}`,
      );
    return new Map(Object.entries(parsed as Record<string, number>));
  }

  /** Writes the weights atomically. Throws XD_ERR_STATE_FILE; the old file is then unchanged. */
  save(weights: ReadonlyMap<string, number>): void {
    this.writeJson(Object.fromEntries([...weights].sort(([a], [b]) => a.localeCompare(b))));
  }
}

/** Every state file of an instance in `dir`. */
export function stateFiles(dir: string, instance: string): (DrainStore | WeightStore)[] {
  return [
    DrainStore.forInstance(dir, instance, 'drained'),
    DrainStore.forInstance(dir, instance, 'maint'),
    WeightStore.forInstance(dir, instance),
    DrainStore.forInstance(dir, instance, 'director-drained'),
  ];
}

/**
 * Moves the state files an older version kept in `fromDir` (beside the admin socket, in /run) to
 * the state directory `toDir`, each one that exists there and not here: read with the same checks
 * as at start (a corrupt or unsafe file is refused, XD_ERR_STATE_FILE, and stays where it is),
 * written atomically in `toDir`, then removed from `fromDir`. A file in both places: the state
 * directory's wins and the old one is left (reported). Returns one line per file it acted on.
 */
export function migrateStateFiles(
  fromDir: string,
  toDir: string,
  instance: string,
): { moved: string[]; ignored: string[] } {
  const out = { moved: [] as string[], ignored: [] as string[] };
  if (path.resolve(fromDir) === path.resolve(toDir)) return out;
  const from = stateFiles(fromDir, instance);
  const to = stateFiles(toDir, instance);
  for (let i = 0; i < from.length; i++) {
    const a = from[i]!;
    const b = to[i]!;
    if (!a.exists()) continue;
    if (b.exists()) {
      out.ignored.push(`${a.file} (${b.file} is used)`);
      continue;
    }
    if (a instanceof WeightStore && b instanceof WeightStore) b.save(a.load());
    else if (a instanceof DrainStore && b instanceof DrainStore) b.save(a.load());
    a.remove();
    out.moved.push(`${a.file} -> ${b.file}`);
  }
  return out;
}
