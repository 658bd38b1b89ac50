// Operator targets: which backends `drain`, `maint` and `weight` act on.
//
//   BACKEND          the backend in every service that has it (name or address:port key)
//   SERVICE/BACKEND  the backend in that service only
//
// Neither service nor backend names may contain "/" (config NAME_RE), and neither do keys
// ("10.0.0.1:3306", "[fd00::1]:3306"), so the first "/" splits the two. Pure: the config's
// services in, the target (or an XdError naming what is unknown and what is valid) out.
import { XdError } from '../errors';
import type { ServiceConfig } from '../config';

export interface Target {
  /** As stored: "BACKEND" or "SERVICE/BACKEND", BACKEND by its name (a key the operator gave becomes the name it has in the config, so `undrain db2` undoes `drain 10.0.0.2:3306`). */
  text: string;
  /** As the operator wrote it (an older drains file may hold this form). */
  given: string;
  /** undefined: every service. */
  service?: string;
  backend: string;
}

const list = (xs: Iterable<string>) => [...new Set(xs)].join(', ');

/** Parses and checks a target against the config; throws XD_ERR_NOT_FOUND naming the unknown part and the valid names. */
export function resolveTarget(services: readonly ServiceConfig[], text: string): Target {
  const slash = text.indexOf('/');
  const service = slash < 0 ? undefined : text.slice(0, slash);
  const backend = slash < 0 ? text : text.slice(slash + 1);
  if (service !== undefined) {
    const s = services.find((x) => x.name === service);
    if (!s)
      throw new XdError(
        'XD_ERR_NOT_FOUND',
        `no service named ${service}: use one of the config's services (${list(services.map((x) => x.name))})`,
      );
    const b = s.backends.find((x) => x.name === backend || x.key === backend);
    if (!b) {
      throw new XdError(
        'XD_ERR_NOT_FOUND',
        `service ${service} has no backend named ${backend}: use one of its backends (${list(s.backends.map((x) => x.name))}), by name or address:port`,
      );
    }
    return { text: `${service}/${b.name}`, given: text, service, backend: b.name };
  }
  const names = new Set(
    services.flatMap((s) => s.backends.filter((b) => b.name === backend || b.key === backend).map((b) => b.name)),
  );
  if (names.size === 0) {
    throw new XdError(
      'XD_ERR_NOT_FOUND',
      `no backend named ${backend}: use a backend name or address:port from the config (${list(services.flatMap((s) => s.backends.map((b) => b.name)))}), or SERVICE/BACKEND for one service`,
    );
  }
  // A key named differently in different services (a name in one, none in another) stays a key.
  const name = names.size === 1 ? [...names][0]! : backend;
  return { text: name, given: text, backend: name };
}

/** The targets that name backend `b` of service `s`: the one-service forms first. */
export function targetsOf(s: { name: string }, b: { name: string; key: string }): string[] {
  return [`${s.name}/${b.name}`, `${s.name}/${b.key}`, b.name, b.key];
}

/** Whether a set of targets (drains, maint) names backend `b` of service `s`. */
export function targeted(set: ReadonlySet<string>, s: { name: string }, b: { name: string; key: string }): boolean {
  return targetsOf(s, b).some((t) => set.has(t));
}

/** The run-time weight of backend `b` of service `s`, if one is set: SERVICE/BACKEND wins over BACKEND. */
export function targetValue<T>(
  map: ReadonlyMap<string, T>,
  s: { name: string },
  b: { name: string; key: string },
): T | undefined {
  for (const t of targetsOf(s, b)) if (map.has(t)) return map.get(t);
  return undefined;
}
