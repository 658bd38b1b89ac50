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
import { DEFAULT_GUE_PORT, DEFAULT_RUN_DIR } from '../defaults';
import { StateFile } from '../state/file';
import { ip, sysctlPath } from './system';
import { directorSets, filterRuleset, findNft, loadFilter, NFT_TABLE_REF, readFilter, removeFilter } from './filter';

const exec = promisify(execFile);

export interface TunnelOptions {
  /** Families of the real server's own (underlay) address the director tunnels to. */
  underlay: (4 | 6)[];
  /** Families of the VIPs carried inside. */
  inner: (4 | 6)[];
  encap: 'ipip' | 'gue';
  /** GUE's UDP port (default 6080, the director's default). */
  guePort?: number;
  /** Where setup records the sysctl values it changed and the devices it created, for teardown (default DEFAULT_TUNNEL_STATE_FILE). */
  stateFile?: string;
  /** The directors' tunnel source addresses: tunnels (and GUE) from anyone else are dropped (filter.ts). */
  directors?: string[];
}

/**
 * The sysctls setup changed, with the values they had. Under /run: the changes are made in
 * /proc/sys only, so a reboot undoes them and this record with them.
 */
export const DEFAULT_TUNNEL_STATE_FILE = `${DEFAULT_RUN_DIR}/realserver-tunnel.json`;

export interface TunnelDevice {
  name: string;
  /** `ip link add` arguments after the name; undefined for a fallback device the module creates. */
  add?: string[];
  /** Kernel module that provides it (for the error when the kernel lacks it). */
  module: string;
  /** What `ip -d link` must show: the rtnetlink kind, and the external (collect_md) flag. */
  kind: 'ipip' | 'sit' | 'ip6tnl';
  external: boolean;
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
    throw new XdError(
      'XD_ERR_USAGE',
      'realserver --tunnel gue: GUE runs over an IPv4 underlay only (the director sends it without a UDP checksum); use ipip for IPv6 real-server addresses',
    );
  }
  const devices: TunnelDevice[] = [];
  if (o.underlay.includes(4) && o.inner.includes(4)) {
    devices.push({
      name: TUNNEL_DEVICES.ipip,
      add: ['type', 'ipip', 'external'],
      module: 'ipip',
      kind: 'ipip',
      external: true,
      why: 'takes IPv4-in-IPv4 from any director (collect_md)',
    });
  }
  if (o.underlay.includes(4) && o.inner.includes(6)) {
    devices.push({
      name: TUNNEL_DEVICES.sit,
      module: 'sit',
      kind: 'sit',
      external: false,
      why: 'the sit fallback device takes IPv6-in-IPv4 from any director',
    });
  }
  if (o.underlay.includes(6)) {
    devices.push({
      name: TUNNEL_DEVICES.ip6tnl,
      add: ['type', 'ip6tnl', 'mode', 'any', 'external'],
      module: 'ip6_tunnel',
      kind: 'ip6tnl',
      external: true,
      why: 'takes IPv4- and IPv6-in-IPv6 from any director (collect_md)',
    });
  }
  const sysctls = [
    {
      key: 'net.ipv4.conf.all.rp_filter',
      value: 0,
      why: "the decapsulated packet arrives on the tunnel with the client's address: strict reverse-path filtering drops it",
    },
    ...devices.map((d) => ({
      key: `net.ipv4.conf.${d.name}.rp_filter`,
      value: 0,
      why: `effective rp_filter on ${d.name} is max(all, ${d.name})`,
    })),
  ];
  return { devices, ...(o.encap === 'gue' ? { fouPort: o.guePort ?? DEFAULT_GUE_PORT } : {}), sysctls };
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

/** One device as `ip -d -j link show` gives it (the fields looked at). */
export interface LinkInfo {
  ifname: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { external?: boolean } };
}

/** The device, or undefined when there is none. */
async function link(name: string): Promise<LinkInfo | undefined> {
  let text: string;
  try {
    text = (await exec('ip', ['-d', '-j', 'link', 'show', 'dev', name], { encoding: 'utf8' })).stdout;
  } catch {
    return undefined;
  }
  return (JSON.parse(text) as LinkInfo[])[0];
}

/**
 * What is wrong with an existing device of the recipe's name, or undefined (pure): a device of
 * another kind (a bridge named xdipip) decapsulates nothing, and one without `external` takes
 * tunnels from one fixed remote only.
 */
export function deviceProblem(d: TunnelDevice, l: LinkInfo): string | undefined {
  const kind = l.linkinfo?.info_kind;
  if (kind !== d.kind)
    return `${d.name} is ${kind ? `a ${kind} device` : 'a device of no tunnel kind'}, not ${d.kind}${d.external ? ' in external mode' : ''}: it decapsulates nothing`;
  if (d.external && l.linkinfo?.info_data?.external !== true)
    return `${d.name} is ${d.kind} but not in external (collect_md) mode: it takes tunnels from one fixed remote only`;
  return undefined;
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
  const record = new TunnelRecord(o.stateFile);
  // Refuse up front: a foreign device of the recipe's name, a director that is not an address.
  for (const d of r.devices) {
    const l = await link(d.name);
    const problem = l && deviceProblem(d, l);
    if (problem)
      throw new XdError(
        'XD_ERR_REALSERVER',
        `${problem}; it is not xdirector's: remove or rename it (ip link del ${d.name}) and run setup again`,
      );
  }
  const filter = o.directors?.length
    ? { directors: o.directors, ...(r.fouPort ? { guePort: r.fouPort } : {}) }
    : undefined;
  const done: string[] = [];
  // The filter before the devices: they never accept a tunnel from anyone else, not even briefly.
  let filterLoaded = false;
  if (!filter) {
    done.push(
      `warning: no --director: ${r.devices.map((d) => d.name).join(', ')} accept${r.devices.length === 1 ? 's' : ''} tunnels${r.fouPort ? ' and GUE' : ''} from any source, so anyone who reaches this server can inject packets from any client address; run setup again with --director ADDR for each director`,
    );
  } else {
    const ruleset = filterRuleset(filter); // refuses a director that is not an address, before anything changed
    const had = record.load().created.nftTable !== undefined;
    record.addCreated({ nftTable: NFT_TABLE_REF }); // before the load: a half-done load is still removed by teardown
    if (await loadFilter(filter)) {
      filterLoaded = !had;
      const { v4, v6 } = directorSets(filter.directors);
      done.push(
        `nftables table ${NFT_TABLE_REF}: tunnels${r.fouPort ? ` and GUE (UDP ${r.fouPort})` : ''} accepted only from ${[...v4, ...v6].join(', ')}, dropped from anyone else`,
      );
    } else {
      if (!had) {
        const st = record.load();
        delete st.created.nftTable;
        record.save(st);
      }
      done.push(
        `warning: nft is not installed (apt-get install nftables): tunnels are accepted from any source until this ruleset is loaded (save it to a file and run nft -f FILE, or write the same rules for your firewall):\n${ruleset}`,
      );
    }
  }
  try {
    done.push(...(await setupDevices(r, record)));
  } catch (err) {
    if (filterLoaded) {
      // Nothing half done: the table this run loaded goes with the failed setup.
      await removeFilter();
      const st = record.load();
      delete st.created.nftTable;
      record.save(st);
    }
    throw err;
  }
  done.push(...lowerSysctls(r.sysctls, o.stateFile));
  return done;
}

/** Creates (and records) the devices and the GUE port setup needs; brings the devices up. */
async function setupDevices(r: TunnelRecipe, record: TunnelRecord): Promise<string[]> {
  const done: string[] = [];
  for (const d of r.devices) {
    const l = await link(d.name);
    if (!l) {
      if (!d.add) {
        throw new XdError(
          'XD_ERR_REALSERVER',
          `${d.name} does not exist: this kernel has no ${d.module} support (modprobe ${d.module}, or a kernel with CONFIG_IPV6_SIT): ${d.why}`,
        );
      }
      try {
        await ip(['link', 'add', d.name, ...d.add]);
      } catch (err) {
        throw new XdError(
          'XD_ERR_REALSERVER',
          `create ${d.name} (${d.why}): ${(err as Error).message}; "Unknown device type" means this kernel has no ${d.module} (modprobe ${d.module})`,
          { cause: err },
        );
      }
      record.addCreated({ devices: [d.name] });
      done.push(`created ${d.name} (${d.why})`);
    } else if (!d.add && !l.flags?.includes('UP')) {
      record.addCreated({ devices: [d.name] }); // sit0: teardown sets it down again
    }
    await ip(['link', 'set', d.name, 'up']);
  }
  if (r.fouPort && !(await fouPorts()).includes(r.fouPort)) {
    try {
      await ip(['fou', 'add', 'port', String(r.fouPort), 'gue']);
    } catch (err) {
      throw new XdError(
        'XD_ERR_REALSERVER',
        `GUE port ${r.fouPort}: ${(err as Error).message}; this kernel needs fou (modprobe fou)`,
        { cause: err },
      );
    }
    record.addCreated({ fouPorts: [r.fouPort] });
    done.push(`receiving GUE on UDP ${r.fouPort} (ip fou)`);
  }
  return done;
}

/** A sysctl setup changed: the value it had and the value setup wrote. */
export interface ChangedSysctl {
  was: number;
  set: number;
}

/** What setup created (and teardown may therefore remove): nothing else is ever removed. */
export interface CreatedBySetup {
  /** Tunnel devices setup added (never sit0: the module's own). */
  devices: string[];
  /** GUE ports setup added with ip fou. */
  fouPorts: number[];
  /** The nftables table setup loaded (src/realserver/filter.ts), e.g. "inet xdirector_rs". */
  nftTable?: string;
}

export interface TunnelState {
  sysctls: Map<string, ChangedSysctl>;
  created: CreatedBySetup;
}

/**
 * The record of what setup changed (TunnelOptions.stateFile): each sysctl it lowered (a "net.…"
 * key) and, under "created", the devices, GUE ports and nftables table it made.
 */
export class TunnelRecord extends StateFile {
  constructor(file = DEFAULT_TUNNEL_STATE_FILE) {
    super(file, {
      what: 'tunnel sysctls changed and devices created by realserver setup',
      example:
        'a JSON object of sysctl -> {"was": N, "set": N} and "created": {"devices": [...], "fou_ports": [...], "nft_table": "inet xdirector_rs"}, e.g. {"net.ipv4.conf.all.rp_filter": {"was": 1, "set": 0}, "created": {"devices": ["xdipip"], "fou_ports": []}}',
      refused: 'realserver setup and teardown --tunnel do not guess what to put back or remove',
      none: 'to forget them (teardown then leaves the sysctls as they are and removes no device)',
    });
  }

  load(): TunnelState {
    const parsed = this.readJson();
    const state: TunnelState = { sysctls: new Map(), created: { devices: [], fouPorts: [] } };
    if (parsed === undefined) return state;
    const bad = (why: string) => this.refuse(`is valid JSON but ${why}: ${JSON.stringify(parsed).slice(0, 80)}`);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('not an object');
    for (const [k, v] of Object.entries(parsed)) {
      if (k === 'created') {
        const c = v as Record<string, unknown>;
        const names = (x: unknown) =>
          Array.isArray(x) && x.every((n) => typeof n === 'string' && /^[A-Za-z0-9_.-]{1,15}$/.test(n));
        const ports = (x: unknown) =>
          Array.isArray(x) && x.every((n) => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536);
        if (
          typeof c !== 'object' ||
          c === null ||
          !names(c.devices ?? []) ||
          !ports(c.fou_ports ?? []) ||
          (c.nft_table !== undefined &&
            (typeof c.nft_table !== 'string' || !/^(inet|ip|ip6) [a-z0-9_]{1,64}$/.test(c.nft_table)))
        ) {
          throw bad('"created" is not {"devices": [names], "fou_ports": [ports], "nft_table": "inet NAME"}');
        }
        state.created = {
          devices: [...((c.devices as string[]) ?? [])],
          fouPorts: [...((c.fou_ports as number[]) ?? [])],
          ...(c.nft_table ? { nftTable: c.nft_table as string } : {}),
        };
        continue;
      }
      const ok =
        /^net\.[a-z0-9_.-]+$/i.test(k) &&
        typeof v === 'object' &&
        v !== null &&
        Number.isInteger((v as ChangedSysctl).was) &&
        Number.isInteger((v as ChangedSysctl).set);
      if (!ok) throw bad('not an object of sysctl -> {"was": N, "set": N}');
      state.sysctls.set(k, v as ChangedSysctl);
    }
    return state;
  }

  /** Writes the record, or removes the file when nothing is left in it. */
  save(st: TunnelState): void {
    const c = st.created;
    const created = c.devices.length || c.fouPorts.length || c.nftTable;
    if (!st.sysctls.size && !created) return this.remove();
    this.writeJson({
      ...Object.fromEntries([...st.sysctls].sort(([a], [b]) => a.localeCompare(b))),
      ...(created
        ? { created: { devices: c.devices, fou_ports: c.fouPorts, ...(c.nftTable ? { nft_table: c.nftTable } : {}) } }
        : {}),
    });
  }

  /** Adds to "created" (recorded before the thing is made: a crash in between still knows it). */
  addCreated(add: Partial<CreatedBySetup>): void {
    const st = this.load();
    for (const d of add.devices ?? []) if (!st.created.devices.includes(d)) st.created.devices.push(d);
    for (const p of add.fouPorts ?? []) if (!st.created.fouPorts.includes(p)) st.created.fouPorts.push(p);
    if (add.nftTable) st.created.nftTable = add.nftTable;
    this.save(st);
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
  const record = new TunnelRecord(stateFile);
  const st = record.load();
  const changed = st.sysctls;
  for (const w of writes) if (!changed.has(w.key)) changed.set(w.key, { was: now.get(w.key)!, set: w.value });
  record.save(st); // before the writes: a crash between them still knows what to put back
  return writes.map((w) => {
    fs.writeFileSync(sysctlPath(w.key), `${w.value}\n`);
    return `set ${w.key}=${w.value} (${w.why}; was ${changed.get(w.key)!.was}, teardown puts it back)`;
  });
}

/**
 * Puts back the sysctls setup recorded, each only if it still holds the value setup wrote (one
 * someone changed since is theirs), then forgets them (the record keeps what setup created). Returns what it did.
 */
export function restoreSysctls(stateFile?: string): string[] {
  const record = new TunnelRecord(stateFile);
  const st = record.load();
  const done: string[] = [];
  for (const [key, c] of st.sysctls) {
    const now = readSysctl(key);
    if (now === undefined) continue;
    if (now !== c.set) {
      done.push(`left ${key}=${now} (changed since setup set it to ${c.set})`);
      continue;
    }
    fs.writeFileSync(sysctlPath(key), `${c.was}\n`);
    done.push(`restored ${key}=${c.was}`);
  }
  st.sysctls.clear();
  record.save(st); // what setup created stays recorded for teardown
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

export interface TunnelFinding {
  ok: boolean;
  what: string;
  fix?: string;
}

/** What this server has and lacks to receive the director's tunnels. */
export async function checkTunnel(o: TunnelOptions): Promise<TunnelFinding[]> {
  const r = tunnelRecipe(o);
  const out: TunnelFinding[] = [];
  for (const d of r.devices) {
    const l = await link(d.name);
    if (!l) {
      out.push({
        ok: false,
        what: `${d.name} is missing: ${d.why}`,
        fix: d.add
          ? `ip link add ${d.name} ${d.add.join(' ')}; ip link set ${d.name} up`
          : `modprobe ${d.module}; ip link set ${d.name} up`,
      });
      continue;
    }
    const problem = deviceProblem(d, l);
    if (problem) {
      out.push({
        ok: false,
        what: problem,
        fix: d.add
          ? `ip link del ${d.name}; ip link add ${d.name} ${d.add.join(' ')}; ip link set ${d.name} up (if ${d.name} is not in use for something else)`
          : `modprobe ${d.module}`,
      });
      continue;
    }
    const up = l.flags?.includes('UP') === true;
    out.push(
      up
        ? { ok: true, what: `${d.name} is ${d.kind}${d.external ? ' (external)' : ''} and up` }
        : { ok: false, what: `${d.name} is down: nothing is decapsulated`, fix: `ip link set ${d.name} up` },
    );
  }
  if (r.fouPort) {
    out.push(
      (await fouPorts()).includes(r.fouPort)
        ? { ok: true, what: `GUE received on UDP ${r.fouPort}` }
        : {
            ok: false,
            what: `no fou socket on UDP ${r.fouPort}: GUE packets are dropped`,
            fix: `ip fou add port ${r.fouPort} gue`,
          },
    );
  }
  let all = 0;
  try {
    all = Number(fs.readFileSync(sysctlPath('net.ipv4.conf.all.rp_filter'), 'utf8').trim());
  } catch {
    /* no IPv4 */
  }
  for (const d of r.devices) {
    let mine = 0;
    try {
      mine = Number(fs.readFileSync(sysctlPath(`net.ipv4.conf.${d.name}.rp_filter`), 'utf8').trim());
    } catch {
      continue;
    }
    const eff = Math.max(all, mine);
    out.push(
      eff === 1
        ? {
            ok: false,
            what: `rp_filter on ${d.name} is strict (max(all=${all}, ${d.name}=${mine}) = 1): decapsulated packets are dropped`,
            fix: `sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.${d.name}.rp_filter=0`,
          }
        : { ok: true, what: `rp_filter on ${d.name} is ${eff === 0 ? 'off' : 'loose'}` },
    );
  }
  out.push(await checkFilter(o, r.fouPort));
  return out;
}

/** The tunnel filter as check sees it: present, hooked, holding the directors given (if any). */
async function checkFilter(o: TunnelOptions, guePort: number | undefined): Promise<TunnelFinding> {
  const fix = `xdirector realserver setup --vip ... --tunnel --director ADDR${o.directors?.length ? '' : " (each director's tunnel source address)"}`;
  if (!findNft())
    return {
      ok: false,
      what: `nft is not installed: no ${NFT_TABLE_REF} filter can be seen, so tunnels may be accepted from any source`,
      fix: `apt-get install nftables, then ${fix}`,
    };
  let f;
  try {
    f = await readFilter();
  } catch (err) {
    if ((err as XdError).detail?.nfTablesMissing)
      return {
        ok: false,
        what: `${(err as Error).message}: no ${NFT_TABLE_REF} filter can be loaded, so tunnels may be accepted from any source`,
        fix: 'modprobe nf_tables (or filter IP protocols 4/41 and the GUE port in front of this server), then ' + fix,
      };
    throw err;
  }
  if (!f || !f.hooked)
    return {
      ok: false,
      what: `no nftables table ${NFT_TABLE_REF}: the tunnel devices${guePort ? ' and the GUE port' : ''} accept packets from any source (anyone who reaches this server can inject traffic from any client address)`,
      fix,
    };
  if (o.directors?.length) {
    const want = directorSets(o.directors);
    const missing = [...want.v4.filter((a) => !f.v4.includes(a)), ...want.v6.filter((a) => !f.v6.includes(a))];
    const extra = [...f.v4.filter((a) => !want.v4.includes(a)), ...f.v6.filter((a) => !want.v6.includes(a))];
    if (missing.length || extra.length) {
      return {
        ok: false,
        what: `${NFT_TABLE_REF} accepts tunnels from ${[...f.v4, ...f.v6].join(', ') || 'no one'}${missing.length ? `, not from ${missing.join(', ')}` : ''}${extra.length ? `; ${extra.join(', ')} not given here` : ''}`,
        fix,
      };
    }
  }
  return { ok: true, what: `${NFT_TABLE_REF} accepts tunnels only from ${[...f.v4, ...f.v6].join(', ') || 'no one'}` };
}

/**
 * Put back the sysctls setup changed and remove what setup recorded creating: its devices, GUE
 * ports and nftables table. A device, port or table of the same name that setup did not create
 * is left alone (said so); sit0 belongs to the kernel: set down only if setup brought it up.
 */
export async function teardownTunnel(o: TunnelOptions): Promise<string[]> {
  const r = tunnelRecipe(o);
  const record = new TunnelRecord(o.stateFile);
  // The sysctls first, while the devices whose keys setup recorded still exist.
  const done: string[] = restoreSysctls(o.stateFile);
  const st = record.load();
  const created = st.created;
  if (r.fouPort && (await fouPorts()).includes(r.fouPort)) {
    if (created.fouPorts.includes(r.fouPort)) {
      await ip(['fou', 'del', 'port', String(r.fouPort)]);
      done.push(`removed GUE port ${r.fouPort}`);
    } else done.push(`left GUE port ${r.fouPort} (setup did not add it)`);
  }
  created.fouPorts = created.fouPorts.filter((p) => p !== r.fouPort);
  for (const d of r.devices) {
    const l = await link(d.name);
    const mine = created.devices.includes(d.name);
    created.devices = created.devices.filter((n) => n !== d.name);
    if (!l) continue;
    if (!mine) {
      done.push(`left ${d.name} (setup did not ${d.add ? 'create' : 'bring up'} it)`);
      continue;
    }
    if (d.add) {
      // Recorded, but replaced since by a device of another kind: not ours any more.
      const problem = deviceProblem(d, l);
      if (problem) {
        done.push(`left ${d.name} (${problem})`);
        continue;
      }
      await ip(['link', 'del', d.name]);
      done.push(`removed ${d.name}`);
    } else {
      await ip(['link', 'set', d.name, 'down']);
      done.push(`set ${d.name} down`);
    }
  }
  if (created.nftTable) {
    if (await removeFilter()) done.push(`removed nftables table ${created.nftTable}`);
    delete created.nftTable;
  } else if (findNft() && (await readFilter().catch(() => undefined))) {
    // Only informative: a kernel without nf_tables has no table to leave.
    done.push(`left nftables table ${NFT_TABLE_REF} (setup did not load it)`);
  }
  record.save(st);
  return done;
}
