// The `bgp:` section: this director announces service VIPs as /32 (/128) routes to its
// routers, which spread flows over every director with ECMP. Pure: validation and
// defaults only; the daemon's src/bgp renders the BGP daemon's config from the output.
//
//   bgp:
//     local_as: 65001
//     router_id: 10.77.0.2          # default: the first IPv4 neighbour's source is not known here, so required
//     hold_time: 9s                 # BGP hold time (3s..65535s); keepalive = hold/3 unless given
//     bfd: { min_rx: 100ms, min_tx: 100ms, multiplier: 3 }
//     neighbours:
//       - address: 10.77.0.1
//         as: 65000
//         bfd: true                 # fast failure detection for this session (needs bfd on the router too)
//         password_file: /etc/xdirector/bgp.pw   # or password: "..." (TCP MD5)
//         hold_time: 3s
//     announce:                     # default: every service VIP
//       - vip: 10.77.0.100
//         med: 10
//         communities: ["65000:100"]

import { z } from 'zod';
import { address, absPath, bool, int, leaf, show } from './fields';
import { duration, formatDuration, parseDuration } from './duration';
import type { Address } from './fields';
import { parseAddress } from '../net/inet';

/** AS numbers: 1..4294967294 (0 and 4294967295 are reserved, RFC 7607 / RFC 7300). */
const asn = (opts: { optional?: boolean } = {}) =>
  leaf<number>(
    (v) =>
      typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4294967294
        ? { value: v }
        : { problem: `must be an AS number from 1 to 4294967294, got ${show(v)}` },
    opts,
  );

const routerId = leaf<string>((v) => {
  const a = typeof v === 'string' ? parseAddress(v.trim()) : undefined;
  if (!a || a.family !== 4)
    return { problem: `must be an IPv4 address (BGP router ids are 32-bit, written as IPv4), got ${show(v)}` };
  if (a.text === '0.0.0.0') return { problem: "must not be 0.0.0.0: use this director's own IPv4 address" };
  return { value: a.text };
});

/** "65000:100" standard community (two 16-bit halves). */
const community = leaf<[number, number]>((v) => {
  const m = typeof v === 'string' ? /^(\d{1,5}):(\d{1,5})$/.exec(v) : null;
  if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535)
    return { problem: `must be a community "ASN:VALUE" with two numbers 0..65535, got ${show(v)}` };
  return { value: [Number(m[1]), Number(m[2])] };
});

/** TCP_MD5SIG_MAXKEYLEN (include/uapi/linux/tcp.h): the kernel refuses a longer key. */
export const MAX_MD5_KEY_BYTES = 80;

/**
 * What is wrong with a TCP MD5 key for BIRD, or undefined. BIRD 2's config strings have no
 * escapes (`"a\"b"` is a syntax error, `\` stays a backslash in 2.0 but newer releases read
 * escapes), so a quote, backslash, NUL or line break cannot be written into bird.conf as the
 * same key: refused, never stripped (a stripped key silently stops matching the router's).
 * The length is in bytes, as the kernel counts it.
 */
export function md5KeyProblem(v: string): string | undefined {
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes === 0 || bytes > MAX_MD5_KEY_BYTES)
    return `must be 1 to ${MAX_MD5_KEY_BYTES} bytes (the kernel's TCP MD5 key limit), got ${bytes}`;
  if (/["\\\n\r\0]/.test(v))
    return `must not contain ${v.includes('"') ? 'a double quote' : v.includes('\\') ? 'a backslash' : 'NUL or a line break'}: BIRD's config strings cannot carry it, so the key would not match the router's (pick a key of letters, digits and punctuation other than " and \\)`;
  return undefined;
}

const password = leaf<string>(
  (v) => {
    if (typeof v !== 'string')
      return { problem: `must be a string of 1 to ${MAX_MD5_KEY_BYTES} bytes (TCP MD5 key), got ${show(v)}` };
    const problem = md5KeyProblem(v);
    return problem ? { problem } : { value: v };
  },
  { optional: true },
);

/** A password_file's key: its content without one trailing line break (echo / an editor adds it). */
export function md5KeyOfFile(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export const bgpNeighbourSchema = z.strictObject({
  address: address(),
  as: asn(),
  /** TCP MD5 key (RFC 2385), inline; or password_file. */
  password,
  password_file: absPath({ optional: true }),
  bfd: bool({ default: false }),
  hold_time: duration({ optional: true, min: 3000, max: 65_535_000 }),
  /** Shown in status and used for the BGP daemon's protocol name; default peer<N>. */
  name: leaf<string>(
    (v) =>
      typeof v === 'string' && /^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(v)
        ? { value: v }
        : { problem: `must be a name of 1 to 32 letters, digits and _ starting with a letter, got ${show(v)}` },
    { optional: true },
  ),
});

export const bgpAnnounceSchema = z.strictObject({
  vip: address(),
  med: int(0, 4294967295, { optional: true }),
  communities: z.array(community).max(32, 'at most 32 communities').optional(),
});

export const bgpSchema = z.strictObject({
  local_as: asn(),
  router_id: routerId,
  hold_time: duration({ default: 9000, min: 3000, max: 65_535_000 }),
  keepalive: duration({ optional: true, min: 1000, max: 21_845_000 }),
  bfd: z.preprocess(
    (v) => (v === undefined ? {} : v),
    z.strictObject({
      min_rx: duration({ default: 100, min: 10, max: 10_000 }),
      min_tx: duration({ default: 100, min: 10, max: 10_000 }),
      multiplier: int(1, 255, { default: 3 }),
    }),
  ),
  neighbours: z.array(bgpNeighbourSchema).min(1, 'list at least one neighbour (the routers this director peers with)'),
  announce: z.array(bgpAnnounceSchema).optional(),
  /** Where the BGP daemon's config, control socket and pid file go (default: the admin socket's directory). */
  run_dir: absPath({ optional: true, maxBytes: 90 }),
  /** The BGP daemon binary (default: bird from PATH). */
  bird: absPath({ optional: true }),
});

export type RawBgpConfig = z.output<typeof bgpSchema>;

export interface BgpNeighbourConfig {
  name: string;
  address: string;
  family: 4 | 6;
  as: number;
  password?: string;
  passwordFile?: string;
  bfd: boolean;
  /** Milliseconds (whole seconds). */
  holdTimeMs: number;
  keepaliveMs: number;
}

export interface BgpAnnounceConfig {
  vip: string;
  family: 4 | 6;
  med?: number;
  communities: [number, number][];
}

export interface BgpConfig {
  localAs: number;
  routerId: string;
  bfd: { minRxMs: number; minTxMs: number; multiplier: number };
  neighbours: BgpNeighbourConfig[];
  announce: BgpAnnounceConfig[];
  runDir: string;
  bird: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const canon = (v: unknown): string | undefined => (typeof v === 'string' ? parseAddress(v.trim())?.text : undefined);

/**
 * Rules across the bgp section and the rest of the config, on the raw YAML (so every problem
 * is reported in one run): announced VIPs must be service VIPs, no VIP both announced and held
 * by VRRP, no NAT service announced, whole-second timers, unique neighbours, one
 * password form.
 */
export function bgpCrossCheck(raw: Record<string, unknown>): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const bgp = raw.bgp;
  if (!isObj(bgp)) return out;
  const services = Array.isArray(raw.services) ? raw.services.filter(isObj) : [];
  const serviceVips = new Set(services.map((s) => canon(s.vip)).filter((v): v is string => v !== undefined));
  const announced: { vip: string; path: (string | number)[] }[] = [];
  if (Array.isArray(bgp.announce)) {
    const seen = new Map<string, number>();
    bgp.announce.forEach((a, i) => {
      if (!isObj(a)) return;
      const vip = canon(a.vip);
      if (!vip) return;
      if (!serviceVips.has(vip))
        out.push({
          path: ['bgp', 'announce', i, 'vip'],
          message: `${vip} is not the VIP of any service: announce only service VIPs (${[...serviceVips].join(', ') || 'none configured'})`,
        });
      if (seen.has(vip))
        out.push({
          path: ['bgp', 'announce', i, 'vip'],
          message: `${vip} is already announced at bgp.announce[${seen.get(vip)}]: list each VIP once`,
        });
      seen.set(vip, i);
      announced.push({ vip, path: ['bgp', 'announce', i, 'vip'] });
    });
  } else {
    for (const v of serviceVips) announced.push({ vip: v, path: ['bgp'] });
  }
  // NAT behind ECMP cannot work: the router spreads the clients over every director, while the
  // real servers send every reply to their one gateway, held by one director. A flow another
  // director forwarded is synced when its handshake completes (bpf/newflow.h), after the SYN-ACK
  // has already reached the gateway's holder with no reverse entry: passed to the kernel, it
  // leaves untranslated and the connection is never established. A NAT VIP is held by VRRP, with
  // its gateway in the same instance, beside the DR and tunnel VIPs BGP announces.
  const byDefault = !Array.isArray(bgp.announce);
  services.forEach((s, i) => {
    const vip = canon(s.vip);
    if (s.forwarding !== 'nat' || !announced.some((a) => a.vip === vip)) return;
    const name = typeof s.name === 'string' ? s.name : `services[${i}]`;
    out.push({
      path: ['services', i, 'forwarding'],
      message: `service ${name} forwards with nat and its VIP ${vip} is announced over BGP${byDefault ? ' (every service VIP by default)' : ''}: behind ECMP the clients reach every director while the real servers send every reply to the one director holding their gateway, and a flow another director forwarded is synced only when its handshake completes, after its SYN-ACK left untranslated (the connection is never established); hold ${vip} with VRRP, its gateway in the same instance (vips: ["${vip}/32", "GATEWAY/PREFIX dev IFACE"]), ${byDefault ? 'and list only the other VIPs in bgp.announce' : `and remove it from bgp.announce`}, or forward ${name} with dr or tunnel`,
    });
  });
  // A routed VIP is not an address on the director: VRRP would add it (and answer ARP for it).
  if (Array.isArray(raw.vrrp)) {
    raw.vrrp.forEach((inst, k) => {
      if (!isObj(inst) || !Array.isArray(inst.vips)) return;
      inst.vips.forEach((v, j) => {
        const vip = canon(typeof v === 'string' ? v.trim().split(/[/\s]/)[0] : undefined);
        const hit = announced.find((a) => a.vip === vip);
        if (hit) {
          out.push({
            path: ['vrrp', k, 'vips', j],
            message: `${vip} is announced over BGP (bgp${hit.path.length > 1 ? `.announce[${hit.path[2]}]` : ': every service VIP by default'}) and held by VRRP instance ${typeof inst.name === 'string' ? inst.name : `vrrp[${k}]`}: a VIP is either routed to every director (BGP, ECMP) or held by one (VRRP), not both; remove it from vrrp[${k}].vips or from bgp.announce`,
          });
        }
      });
    });
  }
  const ms = (v: unknown) => {
    const r = parseDuration(v);
    return 'value' in r ? r.value : undefined;
  };
  const timer = (v: unknown, p: (string | number)[]) => {
    const t = ms(v);
    if (t !== undefined && t % 1000 !== 0)
      out.push({ path: p, message: `BGP timers are whole seconds, got ${show(v)}: write e.g. "3s"` });
  };
  timer(bgp.hold_time, ['bgp', 'hold_time']);
  timer(bgp.keepalive, ['bgp', 'keepalive']);
  const keep = ms(bgp.keepalive);
  if (keep !== undefined) {
    const holds = [
      ms(bgp.hold_time) ?? 9000,
      ...(Array.isArray(bgp.neighbours)
        ? bgp.neighbours
            .filter(isObj)
            .map((n) => ms(n.hold_time))
            .filter((h): h is number => h !== undefined)
        : []),
    ];
    const least = Math.min(...holds);
    if (keep * 3 > least)
      out.push({
        path: ['bgp', 'keepalive'],
        message: `keepalive ${show(bgp.keepalive)} is more than a third of the shortest hold time (${formatDuration(least)}): a session would expire between keepalives; lower keepalive or remove it (default: hold time / 3)`,
      });
  }
  if (Array.isArray(bgp.neighbours)) {
    const addrs = new Map<string, number>();
    const names = new Map<string, number>();
    bgp.neighbours.forEach((n, i) => {
      if (!isObj(n)) return;
      const p = ['bgp', 'neighbours', i];
      const a = canon(n.address);
      if (a !== undefined) {
        if (addrs.has(a))
          out.push({
            path: [...p, 'address'],
            message: `neighbour ${a} is listed twice (also bgp.neighbours[${addrs.get(a)}]): one session per neighbour`,
          });
        addrs.set(a, i);
      }
      if (typeof n.name === 'string') {
        if (names.has(n.name))
          out.push({
            path: [...p, 'name'],
            message: `neighbour name "${n.name}" is used twice (also bgp.neighbours[${names.get(n.name)}])`,
          });
        names.set(n.name, i);
      }
      if (n.password !== undefined && n.password_file !== undefined)
        out.push({ path: [...p, 'password'], message: 'give password or password_file, not both' });
      timer(n.hold_time, [...p, 'hold_time']);
    });
    // An announced VIP of one family needs a neighbour of that family (the session carries its own family).
    const fams = new Set(
      bgp.neighbours
        .filter(isObj)
        .map((n) => parseAddress(String(n.address ?? '').trim())?.family)
        .filter((f) => f !== undefined),
    );
    for (const a of announced) {
      const fam = parseAddress(a.vip)?.family;
      if (fam !== undefined && fams.size > 0 && !fams.has(fam))
        out.push({
          path: a.path,
          message: `${a.vip} is IPv${fam} but no neighbour is IPv${fam}: add an IPv${fam} neighbour (each session carries its own family)`,
        });
    }
  }
  return out;
}

/** The typed section from a fully valid parse. `adminSocketDir` is the default run_dir. */
export function finishBgp(raw: RawBgpConfig, serviceVips: Address[], adminSocketDir: string): BgpConfig {
  const keepalive = (hold: number) => Math.max(1000, Math.floor(hold / 3000) * 1000);
  const announce: BgpAnnounceConfig[] = raw.announce
    ? raw.announce.map((a) => ({
        vip: a.vip.address,
        family: a.vip.family,
        ...(a.med !== undefined ? { med: a.med } : {}),
        communities: a.communities ?? [],
      }))
    : [...new Map(serviceVips.map((v) => [v.address, v])).values()].map((v) => ({
        vip: v.address,
        family: v.family,
        communities: [],
      }));
  return {
    localAs: raw.local_as,
    routerId: raw.router_id,
    bfd: { minRxMs: raw.bfd.min_rx, minTxMs: raw.bfd.min_tx, multiplier: raw.bfd.multiplier },
    neighbours: raw.neighbours.map((n, i) => {
      const hold = n.hold_time ?? raw.hold_time;
      return {
        name: n.name ?? `peer${i + 1}`,
        address: n.address.address,
        family: n.address.family,
        as: n.as,
        ...(n.password !== undefined ? { password: n.password } : {}),
        ...(n.password_file !== undefined ? { passwordFile: n.password_file } : {}),
        bfd: n.bfd,
        holdTimeMs: hold,
        keepaliveMs: raw.keepalive ?? keepalive(hold),
      };
    }),
    announce,
    runDir: raw.run_dir ?? adminSocketDir,
    bird: raw.bird ?? 'bird',
  };
}
