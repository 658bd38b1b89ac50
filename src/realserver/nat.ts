// Real-server side of NAT forwarding: the director rewrites VIP:port to this server's address
// and port, so the server needs no VIP on lo and no ARP sysctls; what it needs is that its
// replies go back through the director, which translates them to VIP:port again. That is the
// default route via the director's inner address (keepalived's LVS-NAT recipe: the gateway
// address VRRP moves with the VIP). Nothing else is changed.
//
// setup replaces the default route of each gateway's family and records the default routes it
// replaced in a state file; teardown puts those back; check asks the kernel which route a reply
// to a client beyond this subnet takes (`ip route get` of a documentation address) and whether
// the gateway is on-link.
//
// Not persisted across reboots: the default route belongs to the host's network configuration
// (ifupdown, systemd-networkd, NetworkManager), which setup prints a reminder about.
//
// Side effects go through `ip` (iproute2), in the caller's network namespace.

import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';
import { parseAddress } from '../net/inet';
import type { Finding } from './realserver';
import { ip } from './system';

export const DEFAULT_NAT_STATE_FILE = '/var/lib/xdirector/realserver-nat.json';

/** Off-subnet destinations whose route is the one replies to clients take (RFC 5737 / RFC 3849 documentation addresses: never a real client). */
const PROBE = { 4: '192.0.2.1', 6: '2001:db8::1' } as const;

export interface Gateway {
  address: string;
  family: 4 | 6;
}

export interface NatOptions {
  gateways: Gateway[];
  /** Where setup records the default routes it replaced (teardown restores them). */
  stateFile?: string;
}

/** `--gateway ADDR`: one address, at most one per family. */
export function parseGateways(texts: string[]): Gateway[] {
  const out: Gateway[] = [];
  for (const t of texts) {
    const a = parseAddress(t.trim());
    if (!a)
      throw new XdError(
        'XD_ERR_USAGE',
        `--gateway ${t}: not an IPv4 or IPv6 address: give the director's inner address (its address on this server's network), e.g. --gateway 10.0.1.1`,
      );
    if (out.some((g) => g.family === a.family))
      throw new XdError(
        'XD_ERR_USAGE',
        `--gateway ${t}: a second IPv${a.family} gateway: a server has one default route per family; give one IPv4 and at most one IPv6 --gateway`,
      );
    out.push({ address: a.text, family: a.family });
  }
  return out;
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
  flags?: string[];
}

async function defaults(family: 4 | 6): Promise<RouteJson[]> {
  return JSON.parse((await ip(['-j', `-${family}`, 'route', 'show', 'default'])) || '[]') as RouteJson[];
}

async function routeGet(family: 4 | 6, dst: string): Promise<RouteJson | undefined> {
  try {
    return (JSON.parse(await ip(['-j', `-${family}`, 'route', 'get', dst])) as RouteJson[])[0];
  } catch {
    return undefined; // unreachable: no route at all
  }
}

/** The metric `ip route replace default via G` gets: 0 for IPv4, IP6_RT_PRIO_USER (1024) for IPv6. */
const DEFAULT_METRIC = { 4: 0, 6: 1024 } as const;
const canon = (a: string | undefined) => (a === undefined ? undefined : (parseAddress(a)?.text ?? a));
const via = (r: RouteJson) =>
  `${r.gateway ? `via ${r.gateway} ` : ''}dev ${r.dev ?? '?'}${r.metric && r.metric !== DEFAULT_METRIC[r.gateway?.includes(':') ? 6 : 4] ? ` metric ${r.metric}` : ''}`;
/** The `ip route` arguments that re-create a recorded default route. */
const routeArgs = (r: RouteJson) => [
  'default',
  ...(r.gateway ? ['via', r.gateway] : []),
  ...(r.dev ? ['dev', r.dev] : []),
  ...(r.metric ? ['metric', String(r.metric)] : []),
  ...(r.flags?.includes('onlink') ? ['onlink'] : []),
];

type State = Partial<Record<'4' | '6', RouteJson[]>>;

function readState(file: string): State {
  if (!fs.existsSync(file)) return {};
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as State;
  } catch (err) {
    throw new XdError(
      'XD_ERR_REALSERVER',
      `${file} is not the JSON realserver setup --nat writes: ${(err as Error).message}; remove it if nothing was set up`,
      { cause: err },
    );
  }
}

function writeState(file: string, s: State): void {
  if (!s['4'] && !s['6']) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`);
}

/** The gateway must be on this server's own network: a route to it with no gateway of its own. */
async function onLinkProblem(g: Gateway): Promise<string | undefined> {
  const r = await routeGet(g.family, g.address);
  if (!r) return `the gateway ${g.address} is unreachable from this server (no route)`;
  if (r.gateway)
    return `the gateway ${g.address} is not on this server's network (reached via ${r.gateway}): give the director's address on the network this server is on`;
  return undefined;
}

/** Make each gateway the default route of its family; record the default routes replaced. Idempotent. */
export async function setupNat(o: NatOptions): Promise<string[]> {
  const file = o.stateFile ?? DEFAULT_NAT_STATE_FILE;
  const state = readState(file);
  // Every check before any change: an off-link gateway refuses the whole setup.
  for (const g of o.gateways) {
    const p = await onLinkProblem(g);
    if (p) throw new XdError('XD_ERR_REALSERVER', `realserver setup --nat: ${p}`);
  }
  const done: string[] = [];
  for (const g of o.gateways) {
    const have = await defaults(g.family);
    const mine = (r: RouteJson) => canon(r.gateway) === g.address;
    const setByUs = (r: RouteJson) => mine(r) && (r.metric ?? 0) === DEFAULT_METRIC[g.family];
    if (have.length === 1 && setByUs(have[0]!)) continue;
    const key = String(g.family) as '4' | '6';
    // The first setup's record is the one teardown restores (a second setup finds its own route).
    if (!state[key]) {
      state[key] = have.filter((r) => !mine(r));
      writeState(file, state);
    }
    // replace first (it takes the place of a metric-0 default), then the other defaults go: no
    // moment without a default route.
    await ip([`-${g.family}`, 'route', 'replace', 'default', 'via', g.address]);
    for (const r of await defaults(g.family)) {
      if (setByUs(r)) continue;
      await ip([`-${g.family}`, 'route', 'del', ...routeArgs(r)]);
    }
    const was = have.filter((r) => !setByUs(r));
    done.push(
      `IPv${g.family} default route via ${g.address} (the director's inner address: replies to clients go back through it)${was.length ? `, replacing ${was.map(via).join(', ')} (recorded in ${file} for teardown)` : ''}`,
    );
  }
  if (done.length)
    done.push(
      "not persisted: make the same gateway the default in this host's network configuration, or the next boot routes replies around the director",
    );
  return done;
}

/** What this server lacks for NAT behind these gateways. */
export async function checkNat(o: NatOptions): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const g of o.gateways) {
    const p = await onLinkProblem(g);
    if (p) {
      out.push({
        ok: false,
        what: p,
        fix: `use --gateway with the director's address on this server's network (ip -${g.family} addr on the director's inner interface)`,
      });
      continue;
    }
    const r = await routeGet(g.family, PROBE[g.family]);
    if (!r || canon(r.gateway) !== g.address) {
      out.push({
        ok: false,
        what: `IPv${g.family} replies to clients beyond this network go ${r ? via(r) : 'nowhere (no default route)'}, not via the director's inner address ${g.address}: they would bypass the director, untranslated, and the clients would drop them`,
        fix: `ip -${g.family} route replace default via ${g.address}`,
      });
    } else {
      out.push({ ok: true, what: `IPv${g.family} replies to clients go via ${g.address} (dev ${r.dev ?? '?'})` });
    }
  }
  return out;
}

/** Put back the default routes setup replaced (or remove the gateway's when none was recorded). */
export async function teardownNat(o: NatOptions): Promise<string[]> {
  const file = o.stateFile ?? DEFAULT_NAT_STATE_FILE;
  const state = readState(file);
  const done: string[] = [];
  for (const g of o.gateways) {
    const key = String(g.family) as '4' | '6';
    const have = await defaults(g.family);
    for (const r of have.filter((x) => canon(x.gateway) === g.address)) {
      await ip([`-${g.family}`, 'route', 'del', ...routeArgs(r)]);
      done.push(`removed the IPv${g.family} default route via ${g.address}`);
    }
    for (const r of state[key] ?? []) {
      await ip([`-${g.family}`, 'route', 'replace', ...routeArgs(r)]);
      done.push(`restored the IPv${g.family} default route ${via(r)}`);
    }
    delete state[key];
  }
  const before = fs.existsSync(file);
  writeState(file, state);
  if (before && !fs.existsSync(file)) done.push(`removed ${file}`);
  return done;
}
