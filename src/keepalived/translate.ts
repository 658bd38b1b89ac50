// keepalived statements → xdirector YAML text. Pure.
//
// Every value that maps one to one is written plainly; a value translated by judgement carries a
// `# keepalived: …` comment on its line saying what it was and why it became this; what has no
// equivalent is returned in `unsupported` (file:line, the statement, what is lost) and, where it
// helps the reader, also left as a comment in the YAML.

import { addressFamily } from '../net/inet';
import { FORWARDING, serviceSchema } from '../config';
import type { Stmt } from './parse';
import { syncGroups } from './sync-group';

export interface ImportResult {
  yaml: string;
  /** "file:line: statement: why it has no equivalent", in file order. */
  unsupported: string[];
  /** How many lines carry a judgement comment. */
  judgements: number;
  /** Services written uncommented: 0 means there is nothing to run (the command refuses it). */
  services: number;
}

export interface ImportOptions {
  /** Used when no vrrp_instance names an interface. */
  interface?: string;
  /** Overrides the instance name taken from global_defs router_id. */
  instance?: string;
  /** The director's own addresses real servers see as the outer source of tunnelled packets (lb_kind TUN). */
  tunnelSource?: string[];
}

const where = (s: Stmt) => `${s.file}:${s.line}`;
const text = (s: Stmt) => [s.keyword, ...s.args].join(' ');
const q = (v: string) => JSON.stringify(v);

/** keepalived seconds ("1", "0.1", "1.5") → a duration with a unit. */
export function seconds(v: string): string | undefined {
  if (!/^\d+(\.\d+)?$/.test(v)) return undefined;
  const ms = Math.round(Number(v) * 1000);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const durMs = (d: string) => (d.endsWith('ms') ? Number(d.slice(0, -2)) : Number(d.slice(0, -1)) * 1000);

function child(s: Stmt, kw: string): Stmt | undefined {
  return s.children?.find((c) => c.keyword === kw);
}

/** A YAML writer that keeps a trailing comment per line and counts judgement comments. */
class Out {
  lines: string[] = [];
  judgements = 0;
  /** Set while writing a part left out (a service or backend that would not be valid): its lines become comments. */
  commented = false;
  line(indent: number, body: string, judgement?: string): void {
    const l = this.commented ? `${' '.repeat(indent)}# ${body}` : ' '.repeat(indent) + body;
    if (judgement) {
      this.judgements++;
      this.lines.push(`${l}  # keepalived: ${judgement.replace(/\n/g, ' ')}`);
    } else this.lines.push(l);
  }
  comment(indent: number, c: string): void {
    this.lines.push(`${' '.repeat(indent)}# ${c}`);
  }
}

interface Field {
  key: string;
  value: string;
  why?: string;
}

/** keepalived scheduler → xdirector scheduler (+ ring), or why not. */
function scheduler(algo: string, persistent: boolean): { fields: Field[]; lost?: string } {
  const a = algo.toLowerCase();
  if (persistent && a !== 'sh') {
    return {
      fields: [
        {
          key: 'scheduler',
          value: 'sh',
          why: `lb_algo ${algo} with persistence_timeout: persistence sends a client to one real server, so sh (Maglev keyed on the client address: affinity for as long as the backend set is unchanged, with no timeout)`,
        },
      ],
    };
  }
  switch (a) {
    case 'rr':
      return { fields: [{ key: 'scheduler', value: 'rr' }] };
    case 'wrr':
      return { fields: [{ key: 'scheduler', value: 'wrr' }] };
    case 'lc':
      return { fields: [{ key: 'scheduler', value: 'lc' }] };
    case 'wlc':
      return {
        fields: [
          {
            key: 'scheduler',
            value: 'lc',
            why: 'lb_algo wlc: xdirector lc weighs backends by the connection counts its MySQL checks read, so the configured weights are not used by lc',
          },
        ],
      };
    case 'sh':
      return { fields: [{ key: 'scheduler', value: 'sh' }] };
    case 'mh':
      return {
        fields: [
          { key: 'scheduler', value: 'maglev' },
          {
            key: 'ring',
            value: 'ipvs-mh',
            why: 'lb_algo mh: the exact table IPVS mh builds, so flows map to the same real servers as under IPVS',
          },
        ],
      };
    default:
      return {
        fields: [
          {
            key: 'scheduler',
            value: 'maglev',
            why: `lb_algo ${algo} has no xdirector scheduler; maglev (consistent hashing) instead`,
          },
        ],
        lost: `lb_algo ${algo} has no equivalent (xdirector schedules with maglev, sh, wrr, rr, lc): maglev is used`,
      };
  }
}

interface BackendOut {
  fields: Field[];
  stmt: Stmt;
  /** Why this real server is left out (written as comments): it would make the config invalid. */
  disabled?: string;
}

/** A MISC_CHECK as check: script (written once the health interval is known, which caps the timeout). */
interface ScriptOut {
  command: string;
  /** misc_timeout in keepalived seconds. */
  timeout?: string;
  dynamic: boolean;
}

interface ServiceOut {
  name: string;
  fields: Field[];
  backends: BackendOut[];
  mysql: boolean;
  script?: ScriptOut;
  /** Why the whole service is left out (written as comments). */
  disabled?: string;
  delayLoop?: string;
  connectTimeout?: string;
  retry?: number;
}

/** How a service forwards: its fields and whether backends may listen on other ports, or why it cannot be translated. */
type ForwardingOut = { fields: Field[]; rewritesPorts: boolean } | { disabled: string };

/** The check settings keepalived keeps inside a check block, and what becomes of each. */
const CHECK_COMMON = new Set(['connect_timeout', 'retry', 'nb_get_retry', 'delay_before_retry', 'connect_port']);

class Translator {
  unsupported: string[] = [];
  private vsGroups = new Map<string, Stmt>();
  private scripts = new Map<string, Stmt>();
  private globals?: Stmt;
  /** tunnel.source_v4 / source_v6: [address, judgement or undefined when given on the command line]. */
  private tunnelSrc = new Map<4 | 6, [string, string | undefined]>();
  private tunnelUsed = new Set<4 | 6>();
  /** A MISC_CHECK became check: script (so the config needs script_user). */
  private scriptChecks = false;
  /** A service forwards with NAT (lb_kind NAT): the nat section may name the server-side interface. */
  private natUsed = false;
  private readonly sync: ReturnType<typeof syncGroups>;

  constructor(
    private readonly stmts: Stmt[],
    private readonly opts: ImportOptions,
  ) {
    this.sync = syncGroups(stmts);
  }

  lost(s: Stmt, why: string): void {
    this.unsupported.push(`${where(s)}: ${text(s)}: ${why}`);
  }

  run(): ImportResult {
    for (const s of this.stmts) {
      if (s.keyword === 'virtual_server_group' && s.args[0]) this.vsGroups.set(s.args[0], s);
      if (s.keyword === 'vrrp_script' && s.args[0]) this.scripts.set(s.args[0], s);
      if (s.keyword === 'global_defs') this.globals = s;
      const src =
        s.keyword === 'vrrp_instance' ? child(s, 'unicast_src_ip')?.args[0]?.replace(/\/\d+$/, '') : undefined;
      const srcFam = src ? addressFamily(src) : undefined;
      if (src && srcFam && !this.tunnelSrc.has(srcFam))
        this.tunnelSrc.set(srcFam, [
          src,
          `unicast_src_ip of vrrp_instance ${s.args[0]}: the director's own address, the outer source real servers see`,
        ]);
    }
    for (const a of this.opts.tunnelSource ?? []) {
      const f = addressFamily(a);
      if (f) this.tunnelSrc.set(f, [a, undefined]);
    }
    const services: ServiceOut[] = [];
    const instances: Stmt[] = [];
    for (const s of this.stmts) {
      switch (s.keyword) {
        case 'global_defs':
          this.checkGlobals(s);
          break;
        case 'virtual_server':
          services.push(...this.virtualServer(s));
          break;
        case 'vrrp_instance':
          instances.push(s);
          break;
        case 'virtual_server_group':
        case 'vrrp_script':
          break;
        case 'vrrp_sync_group':
          this.unsupported.push(
            ...this.sync.lost.filter(
              (l) => l.startsWith(`${where(s)}:`) || (s.children ?? []).some((c) => l.startsWith(`${where(c)}:`)),
            ),
          );
          break;
        default:
          this.lost(s, `no xdirector equivalent for the ${s.keyword} section (not translated)`);
      }
    }
    const o = new Out();
    o.comment(0, `Imported from ${this.stmts[0]?.file ?? 'keepalived.conf'} by xdirector import-keepalived.`);
    o.comment(0, 'Lines marked "keepalived:" were translated by judgement: read them before going live.');
    const routerId = this.globals && child(this.globals, 'router_id')?.args[0];
    const inst =
      this.opts.instance ??
      (routerId
        ? routerId
            .toLowerCase()
            .replace(/[^a-z0-9_-]/g, '-')
            .slice(0, 32)
        : 'keepalived');
    o.line(
      0,
      `instance: ${q(inst)}`,
      this.opts.instance ? undefined : routerId ? `router_id ${routerId}` : 'no router_id: a fixed name',
    );
    const ifaceStmt = instances.map((i) => child(i, 'interface')).find(Boolean);
    if (ifaceStmt) o.line(0, `interface: ${q(ifaceStmt.args[0]!)}`);
    else
      o.line(
        0,
        `interface: ${q(this.opts.interface ?? 'eth0')}`,
        this.opts.interface
          ? undefined
          : 'no vrrp_instance names an interface: the director interface is a guess, check it',
      );
    o.line(0, 'dataplane: auto', 'keepalived programs IPVS; xdirector uses XDP where it can and IPVS otherwise');

    const live = services.filter((s) => !s.disabled);
    this.scriptUser(o);
    const mysql = live.filter((s) => s.mysql);
    if (mysql.length) {
      o.line(0, 'monitor:');
      o.line(
        2,
        'user: "monitor"',
        'keepalived has no MySQL account: create this one (xdirector realserver grant prints the GRANT)',
      );
      o.line(
        2,
        'password_file: "/etc/xdirector/monitor.pw"',
        'put the monitor password in this file (mode 0600); passwords are never inline',
      );
    }
    const intervalMs = this.health(o, live);
    if (this.tunnelUsed.size) {
      o.line(0, 'tunnel:');
      for (const f of [4, 6] as const) {
        const src = this.tunnelUsed.has(f) ? this.tunnelSrc.get(f) : undefined;
        if (src) o.line(2, `source_v${f}: ${q(src[0])}`, src[1]);
      }
    }
    this.natSection(o, instances, ifaceStmt?.args[0]);
    o.line(0, live.length ? 'services:' : 'services: []');
    for (const s of services) {
      if (s.disabled) {
        o.comment(2, `Left out: ${s.disabled.replace(/\n/g, ' ')}`);
        o.commented = true;
      }
      o.line(2, `- name: ${q(s.name)}`);
      for (const f of s.fields) o.line(4, `${f.key}: ${f.value}`, f.why);
      if (s.script) this.checkScript(o, s.script, intervalMs);
      const kept = s.backends.filter((b) => !b.disabled);
      o.line(4, kept.length ? 'backends:' : 'backends: []');
      for (const b of s.backends) {
        const off = !o.commented && !!b.disabled;
        if (off) {
          o.comment(6, `Left out: ${b.disabled}`);
          o.commented = true;
        }
        b.fields.forEach((f, k) => o.line(k === 0 ? 6 : 8, `${k === 0 ? '- ' : ''}${f.key}: ${f.value}`, f.why));
        if (off) o.commented = false;
      }
      o.commented = false;
    }
    if (instances.length) {
      o.line(0, 'vrrp:');
      for (const i of instances) this.vrrpInstance(o, i, ifaceStmt?.args[0]);
    }
    return {
      yaml: o.lines.join('\n') + '\n',
      unsupported: this.unsupported,
      judgements: o.judgements,
      services: live.length,
    };
  }

  /**
   * global_defs script_user → script_user (check scripts, and VRRP track and notify scripts, run
   * as it). Without one keepalived runs scripts as keepalived_script when that user exists, else
   * as root; a check script here never runs as root, so it gets keepalived's default name.
   */
  private scriptUser(o: Out): void {
    const su = this.globals && child(this.globals, 'script_user');
    if (su?.args[0] === 'root') {
      // Explicitly root: VRRP scripts keep running as the daemon's user (root), as without script_user.
      o.comment(
        0,
        "keepalived: script_user root: VRRP track and notify scripts run as the daemon's user (root) when script_user is not set",
      );
      if (this.scriptChecks)
        o.line(
          0,
          'script_user: "keepalived_script"',
          "script_user root: check scripts never run as root here, so keepalived's default script user (create it: useradd --system --no-create-home --shell /usr/sbin/nologin keepalived_script); note VRRP scripts then run as it too",
        );
    } else if (su?.args[0]) {
      o.line(
        0,
        `script_user: ${q(su.args[0])}`,
        su.args[1]
          ? `script_user ${su.args.join(' ')}: scripts run with the user's own group, not ${su.args[1]}`
          : undefined,
      );
      if (su.args[1]) this.lost(su, `the group ${su.args[1]}: scripts run with ${su.args[0]}'s primary group`);
    } else if (this.scriptChecks) {
      o.line(
        0,
        'script_user: "keepalived_script"',
        "no script_user: keepalived's default script user; check scripts never run as root here (create it: useradd --system --no-create-home --shell /usr/sbin/nologin keepalived_script)",
      );
    }
    const sec = this.globals && child(this.globals, 'enable_script_security');
    if (sec)
      o.comment(
        0,
        'keepalived: enable_script_security: check-config always refuses a check script that is missing, not executable, or writable by other users (or in a directory they can write)',
      );
  }

  /** A MISC_CHECK's command, timeout and misc_dynamic under the service. */
  private checkScript(o: Out, sc: ScriptOut, intervalMs: number): void {
    o.line(4, 'check_script:');
    o.line(
      6,
      `command: ${q(sc.command)}`,
      /\{address\}|\{port\}/.test(sc.command)
        ? "misc_path with the real server's address and port as {address} and {port}"
        : "misc_path; the backend's address and port are appended as its last two arguments",
    );
    const t = sc.timeout ? seconds(sc.timeout) : undefined;
    if (t && durMs(t) > intervalMs) {
      const capped = intervalMs % 1000 === 0 ? `${intervalMs / 1000}s` : `${intervalMs}ms`;
      o.line(
        6,
        `timeout: ${capped}`,
        `misc_timeout ${sc.timeout}, capped at the interval (a check must end before the next one starts)`,
      );
    } else if (t) o.line(6, `timeout: ${t}`, `misc_timeout ${sc.timeout}`);
    else {
      // keepalived's misc_timeout defaults to delay_loop; health.timeout is usually far shorter.
      const d = intervalMs % 1000 === 0 ? `${intervalMs / 1000}s` : `${intervalMs}ms`;
      o.line(6, `timeout: ${d}`, 'no misc_timeout: keepalived lets a script run for delay_loop, so the interval');
    }
    if (sc.dynamic) o.line(6, 'dynamic: true', 'misc_dynamic: exit 2+N sets the weight to N');
  }

  /**
   * nat.interface: the real servers' side. keepalived does not name it; its LVS-NAT recipe puts
   * the real servers' gateway in VRRP on that interface, so the interface of a sync group member
   * other than the main one, or of a VIP with dev on another interface, is taken as it.
   */
  private natSection(o: Out, instances: Stmt[], topIface: string | undefined): void {
    if (!this.natUsed) return;
    for (const i of instances) {
      const iface = child(i, 'interface')?.args[0] ?? topIface;
      const group = this.sync.groupOf.get(i.args[0] ?? '');
      if (group && iface && iface !== topIface) {
        o.line(
          0,
          `nat: { interface: ${q(iface)} }`,
          `the real servers' side: vrrp_instance ${i.args[0]} of sync group ${group} is on ${iface}, the gateway keepalived's LVS-NAT recipe moves with the VIP`,
        );
        return;
      }
      for (const v of child(i, 'virtual_ipaddress')?.children ?? []) {
        const k = v.args.indexOf('dev');
        const dev = k >= 0 ? v.args[k + 1] : undefined;
        if (dev && dev !== iface) {
          o.line(
            0,
            `nat: { interface: ${q(dev)} }`,
            `the real servers' side: ${v.keyword} (vrrp_instance ${i.args[0]}) is on ${dev}, the gateway keepalived's LVS-NAT recipe moves with the VIP`,
          );
          return;
        }
      }
    }
  }

  private checkGlobals(g: Stmt): void {
    for (const c of g.children ?? []) {
      switch (c.keyword) {
        case 'router_id':
        case 'vrrp_garp_master_repeat':
        case 'vrrp_garp_master_refresh':
        case 'vrrp_garp_interval':
        case 'vrrp_version':
        case 'enable_script_security':
        case 'script_user':
        case 'lvs_id':
          break; // used below, or meaningless here (xdirector runs scripts as its own user)
        case 'notification_email':
        case 'notification_email_from':
        case 'smtp_server':
        case 'smtp_connect_timeout':
        case 'smtp_helo_name':
          this.lost(c, 'xdirector sends no mail: use a notify hook or the alerts in `xdirector status`');
          break;
        case 'vrrp_strict':
          this.lost(
            c,
            'strict RFC mode has no switch: xdirector always checks TTL 255 and never answers for the VIP on its own',
          );
          break;
        case 'vrrp_skip_check_adv_addr':
          break; // xdirector never drops an advert for its address list
        case 'vrrp_garp_master_delay':
          this.lost(
            c,
            'no second gratuitous-ARP burst after a delay: xdirector repeats at garp.interval and refreshes every garp.refresh',
          );
          break;
        default:
          this.lost(c, 'no xdirector equivalent (ignored)');
      }
    }
  }

  /** virtual_server IP PORT | group NAME | fwmark N → one service per VIP. */
  private virtualServer(vs: Stmt): ServiceOut[] {
    let endpoints: { vip: string; port: number }[] = [];
    if (vs.args[0] === 'fwmark') {
      this.lost(
        vs,
        'firewall-mark services have no equivalent (xdirector matches VIP, port and protocol): give each marked VIP and port a virtual_server of its own',
      );
      return [];
    }
    if (vs.args[0] === 'group') {
      const g = this.vsGroups.get(vs.args[1] ?? '');
      if (!g) {
        this.lost(vs, `virtual_server_group ${vs.args[1]} is not defined`);
        return [];
      }
      for (const e of g.children ?? []) {
        if (e.keyword === 'fwmark') {
          this.lost(e, 'firewall-mark group members have no equivalent: list the VIP and port instead');
          continue;
        }
        const range = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(e.keyword);
        const port = Number(e.args[0]);
        if (!/^\d+$/.test(e.args[0] ?? '') || port < 1 || port > 65535) {
          this.lost(
            e,
            e.args[0] === undefined || e.args[0] === '0'
              ? 'a group member with no port (all ports) has no equivalent: xdirector services have one port'
              : 'not an address and port',
          );
          continue;
        }
        if (range) {
          for (let k = Number(range[2]); k <= Number(range[3]); k++) endpoints.push({ vip: `${range[1]}${k}`, port });
        } else if (addressFamily(e.keyword) !== undefined) endpoints.push({ vip: e.keyword, port });
        else this.lost(e, 'not an address (or IPv4 range) and port');
      }
    } else if (
      addressFamily(vs.args[0] ?? '') !== undefined &&
      /^\d+$/.test(vs.args[1] ?? '') &&
      Number(vs.args[1]) >= 1
    ) {
      endpoints = [{ vip: vs.args[0]!, port: Number(vs.args[1]) }];
    } else {
      this.lost(
        vs,
        addressFamily(vs.args[0] ?? '') !== undefined
          ? 'a virtual server with no port (or port 0: all ports) has no equivalent: xdirector services have one port'
          : 'expected "virtual_server ADDRESS PORT", "group NAME" or "fwmark N"',
      );
      return [];
    }
    if (endpoints.length === 0) {
      this.lost(vs, `virtual_server_group ${vs.args[1]} has no VIP and port xdirector can serve: nothing to translate`);
      return [];
    }
    const get = (kw: string) => child(vs, kw)?.args[0];
    const algo = get('lb_algo') ?? get('lvs_sched') ?? 'wlc';
    // persistence_timeout 0 is keepalived's "no persistence".
    const persistence = child(vs, 'persistence_timeout') && Number(child(vs, 'persistence_timeout')!.args[0] ?? 0) > 0;
    const proto = (get('protocol') ?? 'TCP').toUpperCase();
    const reals = (vs.children ?? []).filter((c) => c.keyword === 'real_server');
    const fields: Field[] = [];
    if (proto === 'UDP') fields.push({ key: 'protocol', value: 'udp' });
    else if (proto !== 'TCP') this.lost(child(vs, 'protocol')!, `protocol ${proto} has no equivalent: tcp is used`);
    const sched = scheduler(algo, !!persistence);
    if (sched.lost) this.lost(child(vs, 'lb_algo') ?? vs, sched.lost);
    fields.push(...sched.fields);
    const fwd = this.forwarding(vs, endpoints);
    if ('fields' in fwd) fields.push(...fwd.fields);
    const port = endpoints[0]!.port;
    // NAT may translate the port: the checks default to the real servers' own port when they share one.
    const realPorts = new Set(reals.map((r) => Number(r.args[1] ?? port)));
    const checkBase = 'fields' in fwd && fwd.rewritesPorts && realPorts.size === 1 ? [...realPorts][0]! : port;
    const check = this.checks(vs, reals, checkBase);
    fields.push(...check.fields);
    for (const c of vs.children ?? []) {
      switch (c.keyword) {
        case 'delay_loop':
        case 'lb_algo':
        case 'lvs_sched':
        case 'lb_kind':
        case 'lvs_method':
        case 'protocol':
        case 'real_server':
        case 'persistence_timeout':
          break;
        case 'sorry_server':
          this.lost(
            c,
            "no sorry server: with no usable backend xdirector passes the packet to the director's kernel (on_empty: pass), which refuses fast",
          );
          break;
        case 'quorum':
        case 'hysteresis':
        case 'quorum_up':
        case 'quorum_down':
          this.lost(c, 'no quorum: track.pools in a vrrp instance lowers the priority when a pool is empty');
          break;
        case 'inhibit_on_failure':
          break; // applied to every real server below
        default:
          this.lost(c, 'no equivalent (ignored)');
      }
    }
    const backends = reals.map((r) =>
      this.realServer(r, port, !!child(vs, 'inhibit_on_failure'), 'fields' in fwd && fwd.rewritesPorts),
    );
    return endpoints.map((e) => ({
      name: addressFamily(e.vip) === 6 ? `${e.vip}-${e.port}` : `${e.vip}:${e.port}`,
      fields: [{ key: 'vip', value: q(e.vip) }, { key: 'port', value: String(e.port) }, ...fields],
      backends,
      mysql: check.mysql,
      ...(check.script ? { script: check.script } : {}),
      ...('disabled' in fwd ? { disabled: fwd.disabled } : {}),
      delayLoop: child(vs, 'delay_loop')?.args[0],
      connectTimeout: check.connectTimeout,
      retry: check.retry,
    }));
  }

  /** lb_kind / lvs_method → forwarding (DR when absent from the output). */
  private forwarding(vs: Stmt, endpoints: { vip: string }[]): ForwardingOut {
    const kindStmt = child(vs, 'lb_kind') ?? child(vs, 'lvs_method');
    const kind = (kindStmt?.args[0] ?? 'NAT').toUpperCase();
    if (kind === 'DR') return { fields: [], rewritesPorts: false };
    if (kind === 'TUN') {
      const fams = new Set(endpoints.map((e) => addressFamily(e.vip)!));
      if (!('forwarding' in serviceSchema.shape))
        this.lost(
          kindStmt!,
          'tunnel forwarding is not in this xdirector build: DR is used, so real servers must share the L2 segment',
        );
      else if ([...fams].some((f) => !this.tunnelSrc.has(f)))
        this.lost(
          kindStmt!,
          `tunnel forwarding needs the director's own IPv${[...fams].find((f) => !this.tunnelSrc.has(f))} address as the outer source and keepalived.conf does not say it: DR is used; rerun with --tunnel-source ADDR`,
        );
      else {
        for (const f of fams) this.tunnelUsed.add(f);
        return {
          fields: [
            {
              key: 'forwarding',
              value: 'tunnel',
              why: 'lb_kind TUN: IPIP encapsulation to each real server (xdirector realserver setup --tunnel on them)',
            },
          ],
          rewritesPorts: false,
        };
      }
      return { fields: [], rewritesPorts: false };
    }
    if (kind === 'NAT') return this.natForwarding(vs, kindStmt);
    this.lost(kindStmt!, `lb_kind ${kind} is not a keepalived forwarding method (DR, TUN, NAT): DR is used`);
    return { fields: [], rewritesPorts: false };
  }

  /**
   * lb_kind NAT (keepalived's default). Translated as forwarding: nat where this build has it;
   * otherwise the service is left out as comments: forwarding it in DR mode instead would send
   * the clients' packets to real servers set up for NAT, which answer from their own address.
   */
  private natForwarding(vs: Stmt, kindStmt: Stmt | undefined): ForwardingOut {
    const what = `lb_kind NAT${kindStmt ? '' : " (keepalived's default: the virtual_server names no lb_kind)"}`;
    if ((FORWARDING as readonly string[]).includes('nat')) {
      this.natUsed = true;
      return {
        fields: [
          {
            key: 'forwarding',
            value: 'nat',
            why: `${what}: the director rewrites the destination (and port) and the replies come back through it, as under IPVS masquerading`,
          },
        ],
        rewritesPorts: true,
      };
    }
    const why = `${what}: this xdirector build forwards in DR and tunnel modes only, so the service is left out (commented); to run it here set the real servers up for DR (xdirector realserver setup: the VIP on lo) and change it to forwarding: dr`;
    this.lost(kindStmt ?? vs, kindStmt ? why.slice('lb_kind NAT: '.length) : why);
    return { disabled: why };
  }

  /**
   * The real servers' check blocks → the service's check (xdirector checks per service,
   * keepalived per real server) and the settings inside them.
   */
  private checks(
    vs: Stmt,
    reals: Stmt[],
    servicePort: number,
  ): { fields: Field[]; mysql: boolean; script?: ScriptOut; connectTimeout?: string; retry?: number } {
    const perReal = reals.map((r) => ({
      r,
      checks: (r.children ?? []).filter((c) => /_CHECK$|_GET$/.test(c.keyword)),
    }));
    for (const { checks } of perReal)
      for (const extra of checks.slice(1))
        this.lost(
          extra,
          `a second check on one real server has no equivalent (xdirector runs one check per service): only ${checks[0]!.keyword} is used`,
        );
    const firsts = perReal.map((p) => p.checks[0]).filter((c): c is Stmt => !!c);
    const c0 = firsts[0];
    for (const c of firsts.slice(1))
      if (c.keyword !== c0!.keyword)
        this.lost(
          c,
          `${c.keyword} differs from the ${c0!.keyword} of the other real servers: xdirector checks every backend of a service the same way, with ${c0!.keyword}`,
        );
    const same = firsts.filter((c) => c.keyword === c0?.keyword);
    const setting = (kw: string) => same.map((c) => child(c, kw)?.args[0]).find((v) => v !== undefined);
    const fields: Field[] = [];
    let mysql = false;
    let script: ScriptOut | undefined;
    // The settings every check kind shares, checked once per check block so each lost one is listed where it is.
    for (const c of same) {
      for (const s of c.children ?? []) {
        if (s.keyword === 'connect_port') {
          const rs = reals.find((r) => r.children?.includes(c));
          const rsPort = Number(rs?.args[1] ?? servicePort);
          if (Number(s.args[0]) !== rsPort)
            this.lost(
              s,
              `the check port ${s.args[0]} differs from the real server's port ${rsPort}: xdirector checks the port it forwards to`,
            );
        } else if (s.keyword === 'delay_before_retry') {
          this.lost(
            s,
            'no separate retry delay: xdirector retries at the next health.interval (a failure counts towards health.fall)',
          );
        } else if (
          (c.keyword === 'TCP_CHECK' || c.keyword === 'MISC_CHECK') &&
          !CHECK_COMMON.has(s.keyword) &&
          !(c.keyword === 'MISC_CHECK' && ['misc_path', 'misc_timeout', 'misc_dynamic', 'user'].includes(s.keyword))
        ) {
          // (The other check kinds are listed whole: their settings went with them.)
          this.lost(s, `${c.keyword} ${s.keyword} has no equivalent (ignored)`);
        }
      }
    }
    const ct = setting('connect_timeout');
    const retry = setting('retry') ?? setting('nb_get_retry');
    const checkPort = Number(setting('connect_port') ?? servicePort);
    if (!c0) {
      if (servicePort === 3306) {
        fields.push({
          key: 'check',
          value: 'mysql',
          why: 'port 3306 with no check: a MySQL service gets the MySQL-aware check',
        });
        mysql = true;
      } else fields.push({ key: 'check', value: 'none' });
    } else if (c0.keyword === 'TCP_CHECK') {
      if (checkPort === 3306) {
        fields.push({
          key: 'check',
          value: 'mysql',
          why: `TCP_CHECK on port ${checkPort}: a MySQL service gets the MySQL-aware check (a bare TCP connect counts against max_connect_errors)`,
        });
        mysql = true;
      } else fields.push({ key: 'check', value: 'tcp' });
    } else if (c0.keyword === 'MISC_CHECK') {
      script = this.miscCheck(same, reals);
      if (script)
        fields.push({
          key: 'check',
          value: 'script',
          why: "MISC_CHECK: the same script, run as script_user with the backend's address and port",
        });
      else
        fields.push({
          key: 'check',
          value: 'tcp',
          why: 'MISC_CHECK that could not be carried over (listed): a TCP connect check meanwhile',
        });
    } else {
      fields.push({
        key: 'check',
        value: 'tcp',
        why: `${c0.keyword} has no xdirector equivalent: a TCP connect check instead`,
      });
      this.lost(
        c0,
        `${c0.keyword} has no equivalent (xdirector checks with mysql, tcp or a script): check: tcp is used`,
      );
    }
    if (mysql) {
      fields.push({
        key: 'pool',
        value: 'static',
        why: 'keepalived sends to every healthy server; pool: writer or readers would split by MySQL role',
      });
    }
    return {
      fields,
      mysql,
      ...(script ? { script } : {}),
      connectTimeout: ct,
      retry: retry ? Number(retry) : undefined,
    };
  }

  /** MISC_CHECK blocks → one check script: the same command for every real server once its address and port are placeholders. */
  private miscCheck(checks: Stmt[], reals: Stmt[]): ScriptOut | undefined {
    const templates = new Set<string>();
    for (const c of checks) {
      const path = child(c, 'misc_path');
      const rs = reals.find((r) => r.children?.includes(c))!;
      if (!path || !path.args[0]) {
        this.lost(c, 'MISC_CHECK without misc_path: nothing to run');
        return undefined;
      }
      let cmd = path.args.join(' ');
      const addr = rs.args[0] ?? '';
      const esc = (v: string) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (addr) cmd = cmd.replace(new RegExp(`(?<![\\w.:])${esc(addr)}(?![\\w.:])`, 'g'), '{address}');
      if (rs.args[1]) cmd = cmd.replace(new RegExp(`(?<![\\w.])${esc(rs.args[1])}(?![\\w.])`, 'g'), '{port}');
      templates.add(cmd);
      const u = child(c, 'user');
      if (u)
        this.lost(
          u,
          `MISC_CHECK user ${u.args.join(' ')}: xdirector runs every check script as script_user (set it to this user if that is the one meant)`,
        );
      if (/(?:^|\s)(?:-p\S|--password[= ]\S)/.test(cmd))
        this.lost(
          path,
          'the script carries a password on its command line (visible in ps): move it to a client defaults file the script user reads (--defaults-extra-file)',
        );
    }
    if (templates.size > 1) {
      this.lost(
        checks[1]!,
        `the real servers' misc_path commands differ by more than their address and port (${[...templates].join(' | ')}): xdirector runs one command per service`,
      );
      return undefined;
    }
    const command = [...templates][0]!;
    if (!command.startsWith('/')) {
      this.lost(
        child(checks[0]!, 'misc_path')!,
        `misc_path ${command.split(' ')[0]} is not an absolute path: check scripts run without a shell and without PATH; give the script's full path`,
      );
      return undefined;
    }
    const timeout = checks.map((c) => child(c, 'misc_timeout')?.args[0]).find(Boolean);
    this.scriptChecks = true;
    // A command with neither placeholder gets the address and port appended (config/script.ts): keepalived scripts ignore or expect them.
    return { command, ...(timeout ? { timeout } : {}), dynamic: checks.some((c) => !!child(c, 'misc_dynamic')) };
  }

  private realServer(r: Stmt, servicePort: number, inhibitAll: boolean, rewritesPorts: boolean): BackendOut {
    const fields: Field[] = [{ key: 'address', value: q(r.args[0] ?? '') }];
    const port = Number(r.args[1]);
    let disabled: string | undefined;
    if (r.args[1] && port !== servicePort) {
      if (rewritesPorts) fields.push({ key: 'port', value: String(port) });
      else {
        disabled = `real server port ${port} differs from the service port ${servicePort}: DR and tunnel forwarding keep the destination port, so this real server is left out (commented); make it listen on ${servicePort}, or forward the service with NAT`;
        this.lost(r, disabled);
      }
    }
    if (inhibitAll || child(r, 'inhibit_on_failure')) {
      // keepalived keeps a failed server at weight 0 so its established connections continue.
      fields[0]!.why =
        "inhibit_on_failure: a failed backend takes no new flows; unlike keepalived's weight 0, its established flows are re-hashed (drain it by hand to let them finish)";
      this.lost(
        child(r, 'inhibit_on_failure') ?? r,
        'established connections of a failed server are re-hashed, not kept at weight 0 (xdirector drain keeps them for a planned removal)',
      );
    }
    const w = child(r, 'weight');
    if (w) fields.push({ key: 'weight', value: String(Number(w.args[0])) });
    for (const c of r.children ?? []) {
      switch (c.keyword) {
        case 'weight':
        case 'inhibit_on_failure':
          break;
        case 'notify_up':
        case 'notify_down':
          this.lost(c, 'no per-backend notify hook: follow backend state in `xdirector status --json` or the metrics');
          break;
        default:
          if (!/_CHECK$|_GET$/.test(c.keyword)) this.lost(c, 'no equivalent (ignored)');
      }
    }
    return { fields, stmt: r, ...(disabled ? { disabled } : {}) };
  }

  /** The health section from the services' checks; returns the check interval in ms. */
  private health(o: Out, services: ServiceOut[]): number {
    const loops = [...new Set(services.map((s) => s.delayLoop).filter((d): d is string => !!d))];
    const cts = [...new Set(services.map((s) => s.connectTimeout).filter((d): d is string => !!d))];
    const retries = [...new Set(services.map((s) => s.retry).filter((d): d is number => d !== undefined))];
    if (!loops.length && !cts.length && !retries.length) return 1000;
    o.line(0, 'health:');
    // health.interval's default (1s) when no delay_loop says otherwise: timeouts are capped at it.
    let interval = 1000;
    if (loops.length) {
      const min = loops
        .map((l) => seconds(l))
        .filter((d): d is string => !!d)
        .sort((a, b) => durMs(a) - durMs(b))[0];
      if (min) {
        interval = durMs(min);
        o.line(
          2,
          `interval: ${min}`,
          loops.length > 1
            ? `delay_loop ${loops.join(', ')}: one interval for every service, the shortest`
            : `delay_loop ${loops[0]}`,
        );
      }
    }
    if (cts.length) {
      let min = cts
        .map((l) => seconds(l))
        .filter((d): d is string => !!d)
        .sort((a, b) => durMs(a) - durMs(b))[0];
      if (min) {
        const why = `connect_timeout ${cts.join(', ')}`;
        if (durMs(min) > interval) {
          min = interval % 1000 === 0 ? `${interval / 1000}s` : `${interval}ms`;
          o.line(2, `timeout: ${min}`, `${why}, capped at the interval (a check must end before the next one starts)`);
        } else o.line(2, `timeout: ${min}`, why);
      }
    }
    o.line(2, 'rise: 1', 'keepalived brings a server back on its first good check');
    if (retries.length) {
      const fall = Math.max(...retries) + 1;
      o.line(2, `fall: ${fall}`, `retry ${retries.join(', ')}: the first failure plus ${Math.max(...retries)} retries`);
    }
    return interval;
  }

  private vrrpInstance(o: Out, i: Stmt, topIface: string | undefined): void {
    const g = (kw: string) => child(i, kw);
    const name = (i.args[0] ?? 'VI').replace(/[^A-Za-z0-9_.:-]/g, '_');
    const state = g('state')?.args[0];
    o.line(
      2,
      `- name: ${q(name)}`,
      state
        ? `state ${state}: keepalived's starting state only; xdirector starts as Backup and the highest priority becomes Master`
        : undefined,
    );
    const iface = g('interface')?.args[0];
    if (iface && iface !== topIface) o.line(4, `interface: ${q(iface)}`);
    o.line(4, `vrid: ${Number(g('virtual_router_id')?.args[0] ?? 0)}`);
    const prio = g('priority')?.args[0];
    if (prio) o.line(4, `priority: ${Number(prio)}`);
    const vipsStmt = g('virtual_ipaddress');
    const vips: string[] = [];
    for (const v of vipsStmt?.children ?? []) {
      const [addr, ...rest] = [v.keyword, ...v.args];
      const dev = rest.indexOf('dev');
      // A VIP on another interface moves with the instance there (the LVS-NAT gateway).
      vips.push(
        dev >= 0 && rest[dev + 1] && rest[dev + 1] !== (iface ?? topIface) ? `${addr} dev ${rest[dev + 1]}` : addr!,
      );
      const extra = rest.filter(
        (w, k) => !(w === 'dev' || rest[k - 1] === 'dev' || w === 'label' || rest[k - 1] === 'label'),
      );
      if (extra.length) this.lost(v, `address options ${extra.join(' ')} are not kept`);
    }
    const v6 = vips.some((v) => v.includes(':'));
    const verStmt = g('version') ?? (this.globals && child(this.globals, 'vrrp_version'));
    const version = verStmt ? Number(verStmt.args[0]) : v6 || g('native_ipv6') ? 3 : 2;
    if (verStmt || v6) o.line(4, `version: ${version}`, verStmt ? undefined : 'IPv6 VIPs: keepalived uses VRRPv3');
    const adv = g('advert_int')?.args[0];
    if (adv) o.line(4, `advert_interval: ${seconds(adv) ?? adv}`);
    o.line(4, `vips: [${vips.map(q).join(', ')}]`);
    const group = this.sync.groupOf.get(i.args[0] ?? '');
    if (group) o.line(4, `sync_group: ${q(group)}`);
    if (g('nopreempt')) o.line(4, 'preempt: false');
    const pd = g('preempt_delay')?.args[0];
    if (pd) o.line(4, `preempt_delay: ${seconds(pd) ?? pd}`);
    // Public configs write a prefix length on these (10.0.0.1/24); it means nothing for a peer.
    const bare = (a: string) => a.replace(/\/\d+$/, '');
    const rawSrc = g('unicast_src_ip')?.args[0];
    const src = rawSrc && bare(rawSrc);
    const rawPeers = (g('unicast_peer')?.children ?? []).map((p) => {
      if (p.args.length) this.lost(p, `peer options ${p.args.join(' ')} are not kept`);
      return p.keyword;
    });
    const peers = rawPeers.map(bare);
    const prefixed = [rawSrc, ...rawPeers].some((a) => a && a !== bare(a));
    if (src)
      o.line(
        4,
        `unicast_src: ${q(src)}`,
        rawSrc !== src ? `unicast_src_ip ${rawSrc}: the address without its prefix length` : undefined,
      );
    if (peers.length)
      o.line(
        4,
        `unicast_peers: [${peers.map(q).join(', ')}]`,
        prefixed && rawSrc === src ? 'unicast_peer addresses without their prefix length' : undefined,
      );
    const auth = g('authentication');
    if (auth) {
      const type = child(auth, 'auth_type')?.args[0]?.toUpperCase();
      const pass = child(auth, 'auth_pass')?.args[0] ?? '';
      if (type !== 'PASS')
        this.lost(
          auth,
          `auth_type ${type} has no equivalent (xdirector has simple-password authentication only): left out`,
        );
      else if (version === 3) this.lost(auth, 'VRRPv3 has no authentication (keepalived ignores it too): left out');
      else if (pass.length > 8)
        o.line(
          4,
          `auth: { type: pass, password: ${q(pass.slice(0, 8))} }`,
          'auth_pass longer than 8 characters: keepalived sends only the first 8, so does this',
        );
      else o.line(4, `auth: { type: pass, password: ${q(pass)} }`);
    }
    this.garp(o, i);
    this.track(o, i);
    this.notify(o, i);
    for (const c of i.children ?? []) {
      switch (c.keyword) {
        case 'state':
        case 'interface':
        case 'virtual_router_id':
        case 'priority':
        case 'virtual_ipaddress':
        case 'version':
        case 'native_ipv6':
        case 'advert_int':
        case 'nopreempt':
        case 'preempt_delay':
        case 'unicast_src_ip':
        case 'unicast_peer':
        case 'authentication':
        case 'garp_master_repeat':
        case 'garp_master_refresh':
        case 'garp_interval':
        case 'track_script':
        case 'track_interface':
        case 'notify':
        case 'notify_master':
        case 'notify_backup':
        case 'notify_fault':
        case 'notify_stop':
          break;
        case 'smtp_alert':
          this.lost(c, 'xdirector sends no mail: use notify');
          break;
        case 'garp_master_delay':
          this.lost(c, 'no second gratuitous-ARP burst after a delay: xdirector refreshes every garp.refresh');
          break;
        case 'dont_track_primary':
          this.lost(c, 'the instance interface is always tracked');
          break;
        case 'virtual_ipaddress_excluded':
          this.lost(
            c,
            'addresses outside the adverts have no equivalent: add them with the system or as VIPs of another instance',
          );
          break;
        default:
          this.lost(c, 'no equivalent (ignored)');
      }
    }
  }

  private garp(o: Out, i: Stmt): void {
    const pick = (local: string, global: string) =>
      child(i, local)?.args[0] ?? (this.globals && child(this.globals, global)?.args[0]);
    const repeat = pick('garp_master_repeat', 'vrrp_garp_master_repeat');
    const interval = pick('garp_interval', 'vrrp_garp_interval');
    const refresh = pick('garp_master_refresh', 'vrrp_garp_master_refresh');
    if (!repeat && !interval && !refresh) return;
    const parts: string[] = [];
    if (repeat) parts.push(`repeat: ${Math.min(100, Math.max(1, Number(repeat)))}`);
    // keepalived sends a burst with no gap by default; xdirector needs a gap, 10ms is the closest.
    if (interval) parts.push(`interval: ${seconds(interval) === '0s' ? '10ms' : seconds(interval)}`);
    if (refresh) parts.push(`refresh: ${seconds(refresh)}`);
    o.line(
      4,
      `garp: { ${parts.join(', ')} }`,
      interval && seconds(interval) === '0s' ? 'garp interval 0: xdirector spaces repeats at least 10ms' : undefined,
    );
  }

  private track(o: Out, i: Stmt): void {
    const ifs = (child(i, 'track_interface')?.children ?? []).map((t) => ({
      name: t.keyword,
      weight: t.args[0] === 'weight' ? Number(t.args[1]) : 0,
    }));
    const scripts: { stmt: Stmt; weight?: number; name: string }[] = [];
    for (const t of child(i, 'track_script')?.children ?? []) {
      const s = this.scripts.get(t.keyword);
      if (!s) {
        this.lost(t, `vrrp_script ${t.keyword} is not defined`);
        continue;
      }
      if (!child(s, 'script')?.args.length) {
        this.lost(t, `vrrp_script ${t.keyword} has no script to run (not tracked)`);
        continue;
      }
      scripts.push({ stmt: s, name: t.keyword, weight: t.args[0] === 'weight' ? Number(t.args[1]) : undefined });
    }
    if (!ifs.length && !scripts.length) return;
    o.line(4, 'track:');
    if (ifs.length) {
      o.line(6, 'interfaces:');
      for (const t of ifs) o.line(8, `- { name: ${q(t.name)}, weight: ${t.weight} }`);
    }
    if (scripts.length) {
      o.line(6, 'scripts:');
      for (const sc of scripts) {
        const s = sc.stmt;
        const cmd = child(s, 'script')?.args.join(' ') ?? '';
        const parts = [`command: ${q(cmd)}`];
        const iv = child(s, 'interval')?.args[0];
        if (iv) parts.push(`interval: ${seconds(iv)}`);
        const to = child(s, 'timeout')?.args[0];
        if (to) parts.push(`timeout: ${seconds(to)}`);
        const w = sc.weight ?? (child(s, 'weight') ? Number(child(s, 'weight')!.args[0]) : 0);
        parts.push(`weight: ${Math.max(-253, Math.min(253, w))}`);
        for (const k of ['rise', 'fall']) {
          const v = child(s, k)?.args[0];
          if (v) parts.push(`${k}: ${Number(v)}`);
        }
        for (const c of s.children ?? []) {
          if (['script', 'interval', 'timeout', 'weight', 'rise', 'fall'].includes(c.keyword)) continue;
          this.lost(
            c,
            c.keyword === 'user'
              ? "a per-script user has no equivalent: every script runs as script_user (or the daemon's user without it)"
              : 'no equivalent (ignored)',
          );
        }
        o.line(8, `- { ${parts.join(', ')} }`, `vrrp_script ${sc.name}`);
      }
    }
  }

  /** keepalived notify hooks → one xdirector notify command ($1 instance, $2 state, $3 priority). */
  private notify(o: Out, i: Stmt): void {
    const all = child(i, 'notify')?.args.join(' ');
    const per: [string, string][] = [];
    for (const [kw, state] of [
      ['notify_master', 'MASTER'],
      ['notify_backup', 'BACKUP'],
      ['notify_fault', 'FAULT'],
      ['notify_stop', 'STOP'],
    ] as const) {
      const c = child(i, kw);
      if (c) per.push([state, c.args.join(' ')]);
    }
    if (!all && !per.length) return;
    if (all && !per.length) {
      // keepalived calls `notify` with: INSTANCE name state priority; xdirector appends name state priority.
      o.line(
        4,
        `notify: ${q(`${all} INSTANCE`)}`,
        'notify: the same arguments as keepalived ("INSTANCE" name state priority)',
      );
      return;
    }
    const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const cases = per.map(([st, cmd]) => `${st}) ${cmd} ;;`).join(' ');
    const body = `case "$2" in ${cases} esac${all ? `; ${all} INSTANCE "$1" "$2" "$3"` : ''}`;
    o.line(
      4,
      `notify: ${q(`/bin/sh -c ${sq(body)} notify`)}`,
      `${per.map(([st]) => `notify_${st.toLowerCase()}`).join(', ')}${all ? ', notify' : ''}: one hook that picks the script by the new state`,
    );
  }
}

/** Translate parsed keepalived statements into an xdirector config. */
export function translateKeepalived(stmts: Stmt[], opts: ImportOptions = {}): ImportResult {
  return new Translator(stmts, opts).run();
}
