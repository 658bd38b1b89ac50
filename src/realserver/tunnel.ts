// Real-server side of tunnel forwarding (forwarding: tunnel): the devices that decapsulate
// what the director sends, and the sysctls that let the decapsulated packet in. The VIPs go on
// lo with arp_ignore/arp_announce exactly as for DR (realserver.ts): the server must accept the
// VIP as a local address and never answer ARP for it.
//
// What arrives and which device takes it (Linux):
//   IPv4 underlay, IPv4 inside (protocol 4)  -> an ipip device in `external` (collect_md) mode:
//                                               takes IPIP from any director, no fixed remote
//   IPv4 underlay, IPv6 inside (protocol 41) -> the sit fallback device sit0 (any remote)
//   IPv6 underlay, IPv4 or IPv6 inside       -> an ip6tnl device in `mode any external`
//   GUE (UDP port P, IPv4 underlay)          -> `ip fou add port P gue`: the fou socket strips
//                                               UDP + GUE and hands the inner packet to the
//                                               ipip / sit handlers above
// rp_filter: the decapsulated packet comes in on the tunnel device with the client's source
// address, whose route points elsewhere: strict reverse-path filtering (1) drops it. The
// effective value is max(conf.all, conf.<dev>) (ip-sysctl.rst), so both must be 0 or 2.
// Replies go straight from the real server to the client (like DR): no tunnel on the way back.
//
// tunnelRecipe() is pure (what to run); setupTunnel/checkTunnel/teardownTunnel run it through
// `ip` and /proc/sys in the caller's network namespace. `xdirector realserver ... --tunnel`
// (src/realserver/cli.ts) calls these next to the DR setup.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { XdError } from '../errors';
import { StateFile } from '../state/file';
import { ip, sysctlPath } from './system';

const exec = promisify(execFile);

export interface TunnelOptions {
  /** Families of the real server's own (underlay) address the director tunnels to. */
  underlay: (4 | 6)[];
  /** Families of the VIPs carried inside. */
  inner: (4 | 6)[];
  encap: 'ipip' | 'gue';
  /** GUE's UDP port (default 6080, the director's default). */
  guePort?: number;
  /** Where setup records the sysctl values it changed, for teardown to put back (default DEFAULT_TUNNEL_STATE_FILE). */
  stateFile?: string;
}

/**
 * The sysctls setup changed, with the values they had. Under /run: the changes are made in
 * /proc/sys only, so a reboot undoes them and this record with them.
 */
export const DEFAULT_TUNNEL_STATE_FILE = '/run/xdirector/realserver-tunnel.json';

export interface TunnelDevice {
  name: string;
  /** `ip link add` arguments after the name; undefined for a fallback device the module creates. */
  add?: string[];
  /** Kernel module that provides it (for the error when the kernel lacks it). */
  module: string;
  why: string;
}

export interface TunnelRecipe {
  devices: TunnelDevice[];
  /** `ip fou add port P gue` for GUE. */
  fouPort?: number;
  sysctls: { key: string; value: number; why: string }[];
}

export const TUNNEL_DEVICES = {
  ipip: 'xdipip',
  sit: 'sit0',
  ip6tnl: 'xdip6tnl',
} as const;

/** What a real server needs for these tunnels (pure). */
export function tunnelRecipe(o: TunnelOptions): TunnelRecipe {
  if (o.encap === 'gue' && o.underlay.includes(6)) {
    throw new XdError('XD_ERR_USAGE', 'realserver --tunnel gue: GUE runs over an IPv4 underlay only (the director sends it without a UDP checksum); use ipip for IPv6 real-server addresses');
  }
  const devices: TunnelDevice[] = [];
  if (o.underlay.includes(4) && o.inner.includes(4)) {
    devices.push({ name: TUNNEL_DEVICES.ipip, add: ['type', 'ipip', 'external'], module: 'ipip', why: 'takes IPv4-in-IPv4 from any director (collect_md)' });
  }
  if (o.underlay.includes(4) && o.inner.includes(6)) {
    devices.push({ name: TUNNEL_DEVICES.sit, module: 'sit', why: 'the sit fallback device takes IPv6-in-IPv4 from any director' });
  }
  if (o.underlay.includes(6)) {
    devices.push({ name: TUNNEL_DEVICES.ip6tnl, add: ['type', 'ip6tnl', 'mode', 'any', 'external'], module: 'ip6_tunnel', why: 'takes IPv4- and IPv6-in-IPv6 from any director (collect_md)' });
  }
  const sysctls = [
    { key: 'net.ipv4.conf.all.rp_filter', value: 0, why: 'the decapsulated packet arrives on the tunnel with the client\'s address: strict reverse-path filtering drops it' },
    ...devices.map((d) => ({ key: `net.ipv4.conf.${d.name}.rp_filter`, value: 0, why: `effective rp_filter on ${d.name} is max(all, ${d.name})` })),
  ];
  return { devices, ...(o.encap === 'gue' ? { fouPort: o.guePort ?? 6080 } : {}), sysctls };
}

/** The recipe as shell commands (for the README and `check` fixes). */
export function recipeCommands(r: TunnelRecipe): string[] {
  const out: string[] = [];
  for (const d of r.devices) {
    out.push(d.add ? `ip link add ${d.name} ${d.add.join(' ')}` : `modprobe ${d.module}   # creates ${d.name}`);
    out.push(`ip link set ${d.name} up`);
  }
  if (r.fouPort) out.push(`ip fou add port ${r.fouPort} gue`);
  for (const s of r.sysctls) out.push(`sysctl -w ${s.key}=${s.value}`);
  return out;
}

async function linkExists(name: string): Promise<boolean> {
  try {
    await exec('ip', ['link', 'show', 'dev', name], { encoding: 'utf8' });
    return true;
  } catch {
    return false;
  }
}

async function fouPorts(): Promise<number[]> {
  try {
    const text = await ip(['fou', 'show']);
    return [...text.matchAll(/port (\d+)/g)].map((m) => Number(m[1]));
  } catch {
    return [];
  }
}

/** Create and bring up the devices, add the GUE port, set rp_filter. Idempotent. Returns what it did. */
export async function setupTunnel(o: TunnelOptions): Promise<string[]> {
  const r = tunnelRecipe(o);
  const done: string[] = [];
  for (const d of r.devices) {
    if (!(await linkExists(d.name))) {
      if (!d.add) {
        throw new XdError('XD_ERR_REALSERVER', `${d.name} does not exist: this kernel has no ${d.module} support (modprobe ${d.module}, or a kernel with CONFIG_IPV6_SIT): ${d.why}`);
      }
      try {
        await ip(['link', 'add', d.name, ...d.add]);
      } catch (err) {
        throw new XdError('XD_ERR_REALSERVER', `create ${d.name} (${d.why}): ${(err as Error).message}; "Unknown device type" means this kernel has no ${d.module} (modprobe ${d.module})`, { cause: err });
      }
      done.push(`created ${d.name} (${d.why})`);
    }
    await ip(['link', 'set', d.name, 'up']);
  }
  if (r.fouPort && !(await fouPorts()).includes(r.fouPort)) {
    try {
      await ip(['fou', 'add', 'port', String(r.fouPort), 'gue']);
    } catch (err) {
      throw new XdError('XD_ERR_REALSERVER', `GUE port ${r.fouPort}: ${(err as Error).message}; this kernel needs fou (modprobe fou)`, { cause: err });
    }
    done.push(`receiving GUE on UDP ${r.fouPort} (ip fou)`);
  }
  done.push(...lowerSysctls(r.sysctls, o.stateFile));
  return done;
}

/** A sysctl setup changed: the value it had and the value setup wrote. */
export interface ChangedSysctl { was: number; set: number }

/** The record of the sysctls setup changed (TunnelOptions.stateFile). */
export class TunnelSysctlRecord extends StateFile {
  constructor(file = DEFAULT_TUNNEL_STATE_FILE) {
    super(file, {
      what: 'tunnel sysctls changed by realserver setup',
      example: 'a JSON object of sysctl -> {"was": N, "set": N}, e.g. {"net.ipv4.conf.all.rp_filter": {"was": 1, "set": 0}}',
      refused: 'realserver setup and teardown --tunnel do not guess what to put back',
      none: 'to forget them (teardown then leaves the sysctls as they are)',
    });
  }

  load(): Map<string, ChangedSysctl> {
    const parsed = this.readJson();
    if (parsed === undefined) return new Map();
    const ok = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      && Object.entries(parsed).every(([k, v]) => /^net\.[a-z0-9_.-]+$/i.test(k) && typeof v === 'object' && v !== null
        && Number.isInteger((v as ChangedSysctl).was) && Number.isInteger((v as ChangedSysctl).set));
    if (!ok) throw this.refuse(`is valid JSON but not an object of sysctl -> {"was": N, "set": N}: ${JSON.stringify(parsed).slice(0, 80)}`);
    return new Map(Object.entries(parsed as Record<string, ChangedSysctl>));
  }

  save(m: ReadonlyMap<string, ChangedSysctl>): void {
    this.writeJson(Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b))));
  }
}

function readSysctl(key: string): number | undefined {
  try {
    return Number(fs.readFileSync(sysctlPath(key), 'utf8').trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // e.g. a device teardown removed
    throw err;
  }
}

/**
 * Writes the recipe's sysctls that need it (sysctlWrites), recording first each one's old value
 * (a value recorded by an earlier setup is kept: it is the one from before xdirector). Returns
 * what it did.
 */
export function lowerSysctls(sysctls: TunnelRecipe['sysctls'], stateFile?: string): string[] {
  const now = new Map(sysctls.map((x) => [x.key, readSysctl(x.key) ?? NaN]));
  const writes = sysctlWrites({ devices: [], sysctls }, (key) => now.get(key)!);
  if (!writes.length) return [];
  const record = new TunnelSysctlRecord(stateFile);
  const changed = record.load();
  for (const w of writes) if (!changed.has(w.key)) changed.set(w.key, { was: now.get(w.key)!, set: w.value });
  record.save(changed); // before the writes: a crash between them still knows what to put back
  return writes.map((w) => {
    fs.writeFileSync(sysctlPath(w.key), `${w.value}\n`);
    return `set ${w.key}=${w.value} (${w.why}; was ${changed.get(w.key)!.was}, teardown puts it back)`;
  });
}

/**
 * Puts back the sysctls setup recorded, each only if it still holds the value setup wrote (one
 * someone changed since is theirs), then forgets the record. Returns what it did.
 */
export function restoreSysctls(stateFile?: string): string[] {
  const record = new TunnelSysctlRecord(stateFile);
  const done: string[] = [];
  for (const [key, c] of record.load()) {
    const now = readSysctl(key);
    if (now === undefined) continue;
    if (now !== c.set) {
      done.push(`left ${key}=${now} (changed since setup set it to ${c.set})`);
      continue;
    }
    fs.writeFileSync(sysctlPath(key), `${c.was}\n`);
    done.push(`restored ${key}=${c.was}`);
  }
  record.remove();
  return done;
}

/**
 * The recipe's sysctls that setup must write, given the current values (pure). Only a strict
 * rp_filter (1) drops decapsulated packets: loose (2, systemd's default) lets them in as check
 * says, so it is left alone rather than switching reverse-path filtering off host-wide.
 */
export function sysctlWrites(r: TunnelRecipe, read: (key: string) => number): TunnelRecipe['sysctls'] {
  return r.sysctls.filter((s) => {
    const now = read(s.key);
    return now !== s.value && !(/\.rp_filter$/.test(s.key) && now === 2);
  });
}

export interface TunnelFinding { ok: boolean; what: string; fix?: string }

/** What this server has and lacks to receive the director's tunnels. */
export async function checkTunnel(o: TunnelOptions): Promise<TunnelFinding[]> {
  const r = tunnelRecipe(o);
  const out: TunnelFinding[] = [];
  for (const d of r.devices) {
    if (!(await linkExists(d.name))) {
      out.push({ ok: false, what: `${d.name} is missing: ${d.why}`, fix: d.add ? `ip link add ${d.name} ${d.add.join(' ')}; ip link set ${d.name} up` : `modprobe ${d.module}; ip link set ${d.name} up` });
      continue;
    }
    const text = await ip(['-j', 'link', 'show', 'dev', d.name]);
    const up = /"UP"/.test(text);
    out.push(up ? { ok: true, what: `${d.name} is up` } : { ok: false, what: `${d.name} is down: nothing is decapsulated`, fix: `ip link set ${d.name} up` });
  }
  if (r.fouPort) {
    out.push((await fouPorts()).includes(r.fouPort)
      ? { ok: true, what: `GUE received on UDP ${r.fouPort}` }
      : { ok: false, what: `no fou socket on UDP ${r.fouPort}: GUE packets are dropped`, fix: `ip fou add port ${r.fouPort} gue` });
  }
  let all = 0;
  try { all = Number(fs.readFileSync(sysctlPath('net.ipv4.conf.all.rp_filter'), 'utf8').trim()); } catch { /* no IPv4 */ }
  for (const d of r.devices) {
    let mine = 0;
    try { mine = Number(fs.readFileSync(sysctlPath(`net.ipv4.conf.${d.name}.rp_filter`), 'utf8').trim()); } catch { continue; }
    const eff = Math.max(all, mine);
    out.push(eff === 1
      ? { ok: false, what: `rp_filter on ${d.name} is strict (max(all=${all}, ${d.name}=${mine}) = 1): decapsulated packets are dropped`, fix: `sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.${d.name}.rp_filter=0` }
      : { ok: true, what: `rp_filter on ${d.name} is ${eff === 0 ? 'off' : 'loose'}` });
  }
  return out;
}

/** Put back the sysctls setup changed, remove the devices xdirector created and the GUE port (sit0 belongs to the kernel: only set down). */
export async function teardownTunnel(o: TunnelOptions): Promise<string[]> {
  const r = tunnelRecipe(o);
  // The sysctls first, while the devices whose keys setup recorded still exist.
  const done: string[] = restoreSysctls(o.stateFile);
  if (r.fouPort && (await fouPorts()).includes(r.fouPort)) {
    await ip(['fou', 'del', 'port', String(r.fouPort)]);
    done.push(`removed GUE port ${r.fouPort}`);
  }
  for (const d of r.devices) {
    if (!(await linkExists(d.name))) continue;
    if (d.add) {
      await ip(['link', 'del', d.name]);
      done.push(`removed ${d.name}`);
    } else {
      await ip(['link', 'set', d.name, 'down']);
      done.push(`set ${d.name} down`);
    }
  }
  return done;
}
