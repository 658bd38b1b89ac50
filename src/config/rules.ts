// Rules across fields, and the cross-field defaults that turn the parsed YAML into a Config.
// crossCheck() runs on the raw parsed YAML even when some fields are invalid, looking only at
// the values that are well formed, so one run reports every problem. Pure.

import * as path from 'node:path';
import { parseAddress, backendKey, hostPort } from '../net/inet';
import { PROTOCOLS } from './schema';
import type { Config, RawConfig, ServiceConfig, BackendConfig } from './schema';
import { DEFAULT_GUE_PORT, defaultSocketPath } from '../defaults';
import { healthSchema } from './health';
import { configWarnings } from './warnings';
import { defaultCheck, natFamilyProblem, natOverrideProblem, natWarnings } from './nat';
import { resolveVrrpInterfaces } from './vrrp';
import { bgpCrossCheck, finishBgp } from './bgp';
import { finishSync } from './sync';
import { adminHttpProblems, splitHostPort } from './admin';
import type { Family } from '../state/types';
import { isPrime, MAX_RING_SIZE, DEFAULT_RING_SIZE } from '../maglev';
import { IPVS_MH_PRIMES, IPVS_MH_DEFAULT_SIZE } from '../maglev';
import { MIN_CONFIG_RING_SIZE } from './fields';
import { finishCheckScript, scriptCheckWarnings, scriptServiceProblems } from './script';

const validRingSize = (v: unknown): v is number =>
  typeof v === 'number' && isPrime(v) && v >= MIN_CONFIG_RING_SIZE && v <= MAX_RING_SIZE;

export type PathItem = string | number;
export interface Problem {
  path: PathItem[];
  message: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

export function pathText(path: readonly PathItem[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

function addr(v: unknown): { text: string; family: Family } | undefined {
  if (typeof v !== 'string') return undefined;
  const a = parseAddress(v.trim());
  return a ? { text: a.text, family: a.family } : undefined;
}

/** Rules that involve more than one field. */
export function crossCheck(raw: unknown): Problem[] {
  const out: Problem[] = [];
  if (!isObj(raw)) return out;
  const dataplane = typeof raw.dataplane === 'string' ? raw.dataplane : 'auto';
  const xdp = isObj(raw.xdp) ? raw.xdp : {};
  const services = Array.isArray(raw.services) ? raw.services : [];

  const serviceNames = new Map<string, number>();
  const serviceEndpoints = new Map<string, number>();
  // Real-server identity across services: key -> first explicit name; name -> key; address -> MAC.
  const nameOfKey = new Map<string, { name: string; path: PathItem[] }>();
  const keyOfName = new Map<string, { key: string; path: PathItem[] }>();
  const macOfAddr = new Map<string, { mac: string; path: PathItem[] }>();
  let backendEntries = 0;
  let needsMonitor: string | undefined;

  services.forEach((s, i) => {
    if (!isObj(s)) return;
    const sp: PathItem[] = ['services', i];
    if (typeof s.name === 'string') {
      const first = serviceNames.get(s.name);
      if (first !== undefined)
        out.push({
          path: [...sp, 'name'],
          message: `duplicate service name "${s.name}" (also services[${first}]): service names must be unique`,
        });
      else serviceNames.set(s.name, i);
    }
    const vip = addr(s.vip);
    const proto = s.protocol === undefined ? 'tcp' : s.protocol;
    if (vip && isPort(s.port) && typeof proto === 'string' && (PROTOCOLS as readonly string[]).includes(proto)) {
      const id = `${hostPort(vip.text, s.port)}/${proto}`;
      const first = serviceEndpoints.get(id);
      if (first !== undefined) {
        out.push({
          path: sp,
          message: `duplicate service: ${id} is already services[${first}]${typeof (services[first] as Record<string, unknown>)?.name === 'string' ? ` (${(services[first] as Record<string, unknown>).name})` : ''}: one service per VIP, port and protocol`,
        });
      } else serviceEndpoints.set(id, i);
    }
    const scheduler = s.scheduler === undefined ? 'maglev' : s.scheduler;
    if (s.ring === 'ipvs-mh' && typeof scheduler === 'string' && scheduler !== 'maglev' && scheduler !== 'sh') {
      out.push({
        path: [...sp, 'ring'],
        message: `ipvs-mh is the ring of the kernel's mh scheduler, used for scheduler maglev (mh with mh-port) or sh (mh without port), not ${scheduler}: remove ring or change the scheduler`,
      });
    }
    const check = s.check ?? defaultCheck(s);
    if (check === 'mysql' && needsMonitor === undefined && typeof s.name === 'string') needsMonitor = s.name;
    if ((s.pool === 'writer' || s.pool === 'readers') && s.check === 'none') {
      out.push({
        path: [...sp, 'pool'],
        message: `pool ${s.pool} is chosen by MySQL role from health checks, but check is none: use check: mysql or pool: static`,
      });
    }
    out.push(...scriptServiceProblems(raw, s, sp));
    if ((s.pool === 'writer' || s.pool === 'readers') && s.check === 'tcp') {
      out.push({
        path: [...sp, 'pool'],
        message: `pool ${s.pool} is chosen by MySQL role, which a tcp check cannot see: use check: mysql or pool: static`,
      });
    }
    if (s.readers_include_writer === true && s.pool !== 'readers') {
      out.push({ path: [...sp, 'readers_include_writer'], message: 'only applies to pool: readers' });
    }
    out.push(...tunnelServiceProblems(s, sp));
    if (!Array.isArray(s.backends)) return;
    const ringKind =
      s.ring ?? (dataplane === 'xdp' || (scheduler !== 'maglev' && scheduler !== 'sh') ? 'maglev' : 'ipvs-mh');
    const ringSlots =
      ringKind === 'ipvs-mh'
        ? typeof xdp.ipvs_mh_size === 'number' && IPVS_MH_PRIMES.includes(xdp.ipvs_mh_size)
          ? xdp.ipvs_mh_size
          : IPVS_MH_DEFAULT_SIZE
        : validRingSize(xdp.ring_size)
          ? xdp.ring_size
          : DEFAULT_RING_SIZE;
    const ringMax =
      xdp.ring_size === undefined ? DEFAULT_RING_SIZE : validRingSize(xdp.ring_size) ? xdp.ring_size : undefined;
    if (ringKind === 'ipvs-mh' && ringMax !== undefined && ringSlots > ringMax) {
      // The rings map holds xdp.ring_size slots per service and generation.
      out.push({
        path: [...sp, s.ring === 'ipvs-mh' ? 'ring' : 'name'],
        message: `the ipvs-mh ring needs ${ringSlots} slots but xdp.ring_size (the slots per service in the rings map) is ${ringMax}: raise xdp.ring_size to a prime >= ${ringSlots}, or set ring: maglev`,
      });
    }
    if (s.backends.length > ringSlots) {
      out.push({
        path: [...sp, 'backends'],
        message: `${s.backends.length} backends do not fit a ring of ${ringSlots} slots: raise xdp.ring_size`,
      });
    }
    backendEntries += s.backends.length;
    const keys = new Map<string, number>();
    s.backends.forEach((b, k) => {
      if (!isObj(b)) return;
      const bp: PathItem[] = [...sp, 'backends', k];
      const a = addr(b.address);
      const fwd = b.forwarding ?? s.forwarding ?? 'dr';
      const natOverride = natOverrideProblem(s, b, bp);
      if (natOverride) out.push(natOverride);
      if (a && vip && a.family !== vip.family && fwd === 'nat') out.push(natFamilyProblem(vip, a, bp));
      if (a && vip && a.family !== vip.family && fwd === 'dr') {
        out.push({
          path: [...bp, 'address'],
          message: `is IPv${a.family} but the service VIP ${vip.text} is IPv${vip.family}: DR forwarding keeps the packet, so a backend has the VIP's family (or use forwarding: tunnel, which carries IPv${vip.family} over IPv${a.family})`,
        });
      }
      out.push(...tunnelBackendProblems(raw, s, a, fwd, bp));
      for (const p of tunnelMtuProblems(raw, s, vip, a, fwd))
        if (!out.some((o) => o.message === p.message)) out.push(p);
      const port = b.port === undefined ? s.port : b.port;
      if (isPort(b.port) && isPort(s.port) && b.port !== s.port && fwd !== 'nat' && !natOverride) {
        // DR rewrites the MAC and a tunnel wraps the packet: both deliver the client's packet
        // unchanged, so the real server sees the service port. Only NAT rewrites it.
        out.push({
          path: [...bp, 'port'],
          message: `is ${b.port} but the service port is ${s.port}: the director forwards packets unchanged (${fwd === 'tunnel' ? 'a tunnel wraps them' : 'DR rewrites only the MAC'}) and cannot translate ports, so the real server receives connections on ${s.port}: make it listen on ${s.port} and remove port (or set port: ${s.port}), forward the service with forwarding: nat (which translates ${s.port} to ${b.port}), or give this backend a service of its own on port ${b.port}`,
        });
      }
      if (!a || !isPort(port)) return;
      const key = backendKey(a.text, port);
      const first = keys.get(key);
      if (first !== undefined) {
        out.push({
          path: bp,
          message: `duplicate backend ${key} in service ${typeof s.name === 'string' ? s.name : `services[${i}]`} (also backends[${first}])`,
        });
      } else keys.set(key, k);
      if (typeof b.name === 'string') {
        const prevName = nameOfKey.get(key);
        if (prevName && prevName.name !== b.name) {
          out.push({
            path: [...bp, 'name'],
            message: `real server ${key} is already named "${prevName.name}" at ${pathText(prevName.path)}: give it one name everywhere`,
          });
        } else if (!prevName) nameOfKey.set(key, { name: b.name, path: [...bp, 'name'] });
      }
      const name = typeof b.name === 'string' ? b.name : key;
      const prevKey = keyOfName.get(name);
      if (prevKey && prevKey.key !== key) {
        out.push({
          path: [...bp, typeof b.name === 'string' ? 'name' : 'address'],
          message: `backend name "${name}" is already used for ${prevKey.key} at ${pathText(prevKey.path)}: names must be unique across the config (xdirector drain NAME)`,
        });
      } else if (!prevKey) keyOfName.set(name, { key, path: bp });
      if (typeof b.mac === 'string') {
        const m = b.mac.toLowerCase().replace(/-/g, ':');
        const prev = macOfAddr.get(a.text);
        if (prev && prev.mac !== m)
          out.push({
            path: [...bp, 'mac'],
            message: `${a.text} already has MAC ${prev.mac} at ${pathText(prev.path)}: one MAC per address`,
          });
        else if (!prev) macOfAddr.set(a.text, { mac: m, path: [...bp, 'mac'] });
      }
    });
  });

  const maxServices = typeof xdp.max_services === 'number' ? xdp.max_services : 64;
  if (services.length > maxServices) {
    out.push({
      path: ['services'],
      message: `${services.length} services exceed xdp.max_services ${maxServices}: raise xdp.max_services`,
    });
  }
  const maxBackends = typeof xdp.max_backends === 'number' ? xdp.max_backends : 4096;
  if (backendEntries > maxBackends - 1) {
    out.push({
      path: ['services'],
      message: `${backendEntries} backend entries (each service has its own) exceed xdp.max_backends ${maxBackends} minus the reserved index 0: raise xdp.max_backends`,
    });
  }
  if (needsMonitor !== undefined && raw.monitor === undefined) {
    out.push({
      path: [],
      message: `monitor is required: service ${needsMonitor} uses check: mysql (the default on port 3306); add a monitor section (user, password_file or password_env) or set check: tcp or none`,
    });
  }
  out.push(...bgpCrossCheck(raw));
  if (isObj(raw.admin)) out.push(...adminHttpProblems(raw.admin));
  return out;
}

/** encap / gue_port belong to tunnel forwarding. */
function tunnelServiceProblems(s: Record<string, unknown>, sp: PathItem[]): Problem[] {
  const out: Problem[] = [];
  const anyTunnel =
    s.forwarding === 'tunnel' ||
    (Array.isArray(s.backends) && s.backends.some((b) => isObj(b) && b.forwarding === 'tunnel'));
  if (!anyTunnel) {
    for (const k of ['encap', 'gue_port'] as const) {
      if (s[k] !== undefined)
        out.push({
          path: [...sp, k],
          message: `only applies to tunnel forwarding: set forwarding: tunnel (on the service or a backend) or remove ${k}`,
        });
    }
  } else if (s.gue_port !== undefined && s.encap !== 'gue') {
    out.push({ path: [...sp, 'gue_port'], message: 'only applies to encap: gue' });
  }
  return out;
}

/** A tunnel backend needs the director's source address of its family; GUE runs over IPv4 only. */
function tunnelBackendProblems(
  raw: Record<string, unknown>,
  s: Record<string, unknown>,
  a: { text: string; family: Family } | undefined,
  fwd: unknown,
  bp: PathItem[],
): Problem[] {
  if (fwd !== 'tunnel' || !a) return [];
  const out: Problem[] = [];
  const tunnel = isObj(raw.tunnel) ? raw.tunnel : {};
  const key = a.family === 4 ? 'source_v4' : 'source_v6';
  if (tunnel[key] === undefined) {
    out.push({
      path: [...bp, 'address'],
      message: `is an IPv${a.family} tunnel endpoint but tunnel.${key} is not set: add the director's IPv${a.family} address (the outer source the real server sees) as tunnel.${key}`,
    });
  } else {
    const src = addr(tunnel[key]);
    if (src && src.family !== a.family)
      out.push({ path: ['tunnel', key], message: `must be an IPv${a.family} address, got ${src.text}` });
  }
  if (s.encap === 'gue' && a.family === 6) {
    out.push({
      path: [...bp, 'address'],
      message:
        'GUE is sent with a zero UDP checksum, which only IPv4 allows (RFC 768 vs RFC 8200 8.1): use an IPv4 real-server address or encap: ipip for IPv6',
    });
  }
  return out;
}

/** IPv6's minimum link MTU (RFC 8200 5): a host never lowers its path MTU below it. */
const IPV6_MIN_MTU = 1280;

/**
 * An IPv6 service over a tunnel needs tunnel.mtu >= 1280 + the outer headers: below that the
 * director answers a full-size packet with "packet too big" naming an MTU under 1280, which the
 * client clamps to 1280 (RFC 8201 4), so it keeps sending packets that never fit: black-holed.
 */
function tunnelMtuProblems(
  raw: Record<string, unknown>,
  s: Record<string, unknown>,
  vip: { family: Family } | undefined,
  a: { text: string; family: Family } | undefined,
  fwd: unknown,
): Problem[] {
  if (fwd !== 'tunnel' || !a || vip?.family !== 6) return [];
  const tunnel = isObj(raw.tunnel) ? raw.tunnel : {};
  const mtu = tunnel.mtu;
  if (typeof mtu !== 'number') return [];
  const gue = s.encap === 'gue';
  const outer = (a.family === 4 ? 20 : 40) + (gue ? 8 + 4 : 0);
  if (mtu - outer >= IPV6_MIN_MTU) return [];
  const how = `${gue ? 'GUE' : 'IPIP'} over IPv${a.family} (${outer} bytes of outer headers)`;
  return [
    {
      path: ['tunnel', 'mtu'],
      message: `is ${mtu}, which leaves ${mtu - outer} bytes for the IPv6 packets of service ${String(s.name)} carried by ${how} to ${a.text}: IPv6 needs ${IPV6_MIN_MTU} (RFC 8200 5), and a client clamps a smaller "packet too big" MTU to ${IPV6_MIN_MTU}, so its full-size packets would be black-holed: raise tunnel.mtu to at least ${IPV6_MIN_MTU + outer} (the underlay path must carry it), or forward this IPv6 service with forwarding: dr`,
    },
  ];
}

/** Cross-field defaults: the typed Config from a fully valid parse. */
export function finish(raw: RawConfig, source: string): Config {
  const services: ServiceConfig[] = raw.services.map((s) => {
    const namesByKey = new Map<string, string>();
    return {
      name: s.name,
      vip: s.vip.address,
      family: s.vip.family,
      port: s.port,
      protocol: s.protocol,
      scheduler: s.scheduler,
      ring:
        s.ring ??
        (raw.dataplane === 'xdp' || (s.scheduler !== 'maglev' && s.scheduler !== 'sh') ? 'maglev' : 'ipvs-mh'),
      ringSize: 0, // set below
      onEmpty: s.on_empty,
      check: s.check ?? defaultCheck({ port: s.port, forwarding: s.forwarding, backends: s.backends }),
      ...(s.check === 'script' && s.check_script ? { checkScript: finishCheckScript(s.check_script, raw) } : {}),
      pool: s.pool,
      readersIncludeWriter: s.readers_include_writer,
      forwarding: s.forwarding,
      encap: s.encap ?? 'ipip',
      guePort: s.gue_port ?? DEFAULT_GUE_PORT,
      backends: s.backends.map((b): BackendConfig => {
        const port = b.port ?? s.port;
        const key = backendKey(b.address.address, port);
        namesByKey.set(key, b.name ?? key);
        return {
          key,
          name: b.name ?? key,
          address: b.address.address,
          family: b.address.family,
          port,
          weight: b.weight,
          ...(b.mac ? { mac: b.mac } : {}),
          forwarding: b.forwarding ?? s.forwarding,
        };
      }),
    };
  });
  // One name per real server: an explicit name given anywhere applies everywhere.
  const explicit = new Map<string, string>();
  raw.services.forEach((s) =>
    s.backends.forEach((b) => {
      if (b.name) explicit.set(backendKey(b.address.address, b.port ?? s.port), b.name);
    }),
  );
  for (const s of services) {
    s.ringSize = s.ring === 'ipvs-mh' ? raw.xdp.ipvs_mh_size : raw.xdp.ring_size;
    for (const b of s.backends) b.name = explicit.get(b.key) ?? b.name;
  }
  const cfg: Omit<Config, 'warnings'> = {
    instance: raw.instance,
    interface: raw.interface,
    dataplane: raw.dataplane,
    xdp: {
      mode: raw.xdp.mode,
      ringSize: raw.xdp.ring_size,
      ipvsMhSize: raw.xdp.ipvs_mh_size,
      flowTableSize: raw.xdp.flow_table_size,
      embryonicTableSize: raw.xdp.embryonic_table_size,
      takeoverTableSize: raw.xdp.takeover_table_size,
      newFlowRate: raw.xdp.new_flow_rate,
      synReuseIdleMs: raw.xdp.syn_reuse_idle_ms,
      tooBigRate: raw.xdp.too_big_rate,
      maxServices: raw.xdp.max_services,
      maxBackends: raw.xdp.max_backends,
      pinDir: raw.xdp.pin_dir,
    },
    admin: {
      socket: raw.admin.socket ?? defaultSocketPath(raw.instance),
      ...(raw.admin.http ? { http: splitHostPort(raw.admin.http) } : {}),
      ...(raw.admin.http_token_file ? { httpTokenFile: raw.admin.http_token_file } : {}),
      ...(raw.admin.http_read_token_file ? { httpReadTokenFile: raw.admin.http_read_token_file } : {}),
      ...(raw.admin.http_host_names?.length ? { httpHostNames: raw.admin.http_host_names } : {}),
    },
    stateDir: raw.state_dir,
    log: { level: raw.log.level },
    ...(raw.script_user ? { scriptUser: raw.script_user } : {}),
    ...(raw.monitor ? { monitor: raw.monitor } : {}),
    health: raw.health ?? healthSchema.parse({}),
    vrrp: resolveVrrpInterfaces(raw.vrrp ?? [], raw.interface).map((v) =>
      raw.script_user ? { ...v, scriptUser: raw.script_user } : v,
    ),
    ...(raw.bgp
      ? {
          bgp: finishBgp(
            raw.bgp,
            raw.services.map((s) => s.vip),
            path.dirname(raw.admin.socket ?? defaultSocketPath(raw.instance)),
          ),
        }
      : {}),
    ...(raw.sync ? { sync: finishSync(raw.sync) } : {}),
    tunnel: {
      ...(raw.tunnel.source_v4 ? { sourceV4: raw.tunnel.source_v4.address } : {}),
      ...(raw.tunnel.source_v6 ? { sourceV6: raw.tunnel.source_v6.address } : {}),
      ...(raw.tunnel.mtu ? { mtu: raw.tunnel.mtu } : {}),
    },
    nat: {
      interface: raw.nat.interface ?? raw.interface,
      twoArmed: raw.nat.interface !== undefined && raw.nat.interface !== raw.interface,
    },
    services,
    source,
  };
  return { ...cfg, warnings: [...configWarnings(cfg), ...scriptCheckWarnings(cfg.services), ...natWarnings(cfg)] };
}
