// The operator's run-time decisions about backends, kept on disk so that a restart keeps them:
//
// <dir of admin.socket>/<instance>.drained.json: drained backends, a JSON array of targets;
// <dir of admin.socket>/<instance>.maint.json: backends in maintenance, the same form;
// <dir of admin.socket>/<instance>.weights.json: run-time weights, a JSON object target -> weight.
// A target is BACKEND (every service) or SERVICE/BACKEND (one service), BACKEND a name or an
// address:port key (src/desired/targets.ts). Each file is mode 0600. A drain is an operator's
// decision; losing it sends new flows to a server someone is working on, so each is a StateFile
// (src/state/file.ts: atomic writes, no symlinks, owner check) and a file that does not parse is
// refused with the path and the fix: the daemon does not start on a guess.
import path from 'node:path';
import { WEIGHT_MAX } from '../config/schema';
import { StateFile, type StateFileKind } from '../state/file';

/** What each file holds: its name's suffix, what it is called in messages, an example of its form, and what an absent file means. */
const KINDS = {
  drained: kind('drained backends', 'a JSON array of backend names from the config, e.g. ["db2"] or ["mysql/db2"]', 'with no backend drained'),
  maint: kind('backends in maintenance', 'a JSON array of backend names from the config, e.g. ["db2"] or ["mysql/db2"]', 'with no backend in maintenance'),
  weights: kind('run-time weights', 'a JSON object of backend name -> weight, e.g. {"mysql/db2": 3}', 'with the config\'s weights'),
};
type DaemonFile = keyof typeof KINDS;

function kind(what: string, example: string, none: string): StateFileKind {
  return { what, example, refused: `xdirector does not start without knowing its ${what}`, none: `to start ${none}` };
}

/** The file of an instance: beside its admin socket. */
function pathFor(adminSocket: string, instance: string, k: DaemonFile): string {
  return path.join(path.dirname(adminSocket), `${instance}.${k}.json`);
}

/** A set of targets: drained backends (`drained`) or backends in maintenance (`maint`). */
export class DrainStore extends StateFile {
  constructor(file: string, kind: 'drained' | 'maint' = 'drained') { super(file, KINDS[kind]); }

  /** The file of an instance: beside its admin socket. */
  static forInstance(adminSocket: string, instance: string, kind: 'drained' | 'maint' = 'drained'): DrainStore {
    return new DrainStore(pathFor(adminSocket, instance, kind), kind);
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
  constructor(file: string) { super(file, KINDS.weights); }

  static forInstance(adminSocket: string, instance: string): WeightStore {
    return new WeightStore(pathFor(adminSocket, instance, 'weights'));
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
