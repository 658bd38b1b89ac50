// keepalived's vrrp_sync_group → one xdirector instance. Pure, statement to statement, before the
// translation proper (translate.ts).
//
// A sync group makes instances fail over as one: in keepalived's LVS-NAT recipe, VI_1 holds the
// VIP on the client side and VI_2 the real servers' gateway on the server side, and the group
// moves them together. xdirector does the same with one instance whose VIPs live on several
// interfaces ("addr/prefix dev IFACE"), each such interface tracked (down = Fault, as a member's
// fault faults the group). So the first member on the director's main interface keeps its VRRP
// settings and takes the other members' VIPs, each on its member's interface; the other members'
// own VRRP settings (VRID, priority, adverts on their interface) go, and are listed.

import type { Stmt } from './parse';

const child = (s: Stmt, kw: string) => s.children?.find((c) => c.keyword === kw);
const where = (s: Stmt) => `${s.file}:${s.line}`;
const text = (s: Stmt) => [s.keyword, ...s.args].join(' ');

/** The synthetic statement a merged instance carries: args = group name, then the merged members. */
export const SYNC_GROUP_MARK = 'xdirector_sync_group';

export interface MergeResult {
  stmts: Stmt[];
  /** "file:line: statement: what is lost", as translate.ts lists them. */
  lost: string[];
}

/**
 * Replace each vrrp_sync_group and its member instances by one vrrp_instance (the first member on
 * `topIface`, else the first member) carrying every member's VIPs. Groups that cannot be merged
 * (a member missing, of another address family) are left as they are and listed.
 */
export function mergeSyncGroups(stmts: Stmt[], topIface?: string): MergeResult {
  const lost: string[] = [];
  const instances = new Map(stmts.filter((s) => s.keyword === 'vrrp_instance' && s.args[0]).map((s) => [s.args[0]!, s]));
  const drop = new Set<Stmt>();
  const replace = new Map<Stmt, Stmt>();
  for (const g of stmts.filter((s) => s.keyword === 'vrrp_sync_group')) {
    const name = g.args[0] ?? '?';
    const groupStmt = child(g, 'group');
    const names = (groupStmt?.children ?? []).flatMap((c) => [c.keyword, ...c.args]);
    for (const c of g.children ?? []) {
      if (c.keyword !== 'group') lost.push(`${where(c)}: ${text(c)}: the sync group's ${c.keyword} is not kept (the merged instance's own notify and tracking apply)`);
    }
    const members = names.map((n) => instances.get(n));
    const missing = names.filter((_, k) => !members[k]);
    if (missing.length || names.length < 2) {
      lost.push(`${where(g)}: ${text(g)}: ${missing.length ? `member ${missing.join(', ')} is no vrrp_instance` : 'fewer than two members'}: not merged, each instance fails over on its own`);
      drop.add(g);
      continue;
    }
    const ms = members as Stmt[];
    const fam = (m: Stmt) => ((child(m, 'virtual_ipaddress')?.children ?? []).some((v) => v.keyword.includes(':')) ? 6 : 4);
    if (new Set(ms.map(fam)).size > 1) {
      lost.push(`${where(g)}: ${text(g)}: its members carry IPv4 and IPv6 VIPs, and an xdirector instance one family: not merged, each instance fails over on its own`);
      drop.add(g);
      continue;
    }
    const iface = (m: Stmt) => child(m, 'interface')?.args[0];
    const primary = ms.find((m) => topIface && iface(m) === topIface) ?? ms[0]!;
    const vips: Stmt[] = [...(child(primary, 'virtual_ipaddress')?.children ?? [])];
    const tracked: Stmt[] = [...(child(primary, 'track_interface')?.children ?? [])];
    const scripts: Stmt[] = [...(child(primary, 'track_script')?.children ?? [])];
    for (const m of ms) {
      if (m === primary) continue;
      const mi = iface(m);
      for (const v of child(m, 'virtual_ipaddress')?.children ?? []) {
        // A VIP that names its own dev keeps it; otherwise it lives on its member's interface.
        vips.push(v.args.includes('dev') || !mi ? v : { ...v, args: [...v.args, 'dev', mi] });
      }
      // The member's tracking would have faulted the group: it faults the merged instance.
      for (const t of child(m, 'track_interface')?.children ?? []) if (!tracked.some((x) => x.keyword === t.keyword)) tracked.push(t);
      for (const t of child(m, 'track_script')?.children ?? []) if (!scripts.some((x) => x.keyword === t.keyword)) scripts.push(t);
      lost.push(`${where(m)}: vrrp_instance ${m.args[0]}: merged into ${primary.args[0]} (vrrp_sync_group ${name}): its VIPs move with ${primary.args[0]}'s, on ${mi ?? 'their own interface'} (tracked: down = Fault); its own virtual_router_id ${child(m, 'virtual_router_id')?.args[0] ?? '?'}, priority and adverts${mi ? ` on ${mi}` : ''} are not kept`);
      drop.add(m);
    }
    const rest = (primary.children ?? []).filter((c) => !['virtual_ipaddress', 'track_interface', 'track_script'].includes(c.keyword));
    const block = (kw: string, children: Stmt[], like?: Stmt): Stmt[] => (children.length ? [{ keyword: kw, args: [], children, file: like?.file ?? primary.file, line: like?.line ?? primary.line }] : []);
    replace.set(primary, {
      ...primary,
      children: [
        ...rest,
        ...block('virtual_ipaddress', vips, child(primary, 'virtual_ipaddress')),
        ...block('track_interface', tracked, child(primary, 'track_interface')),
        ...block('track_script', scripts, child(primary, 'track_script')),
        { keyword: SYNC_GROUP_MARK, args: [name, ...ms.filter((m) => m !== primary).map((m) => m.args[0]!)], file: g.file, line: g.line },
      ],
    });
    drop.add(g);
  }
  return { stmts: stmts.filter((s) => !drop.has(s)).map((s) => replace.get(s) ?? s), lost };
}
