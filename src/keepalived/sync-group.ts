// keepalived's vrrp_sync_group → `sync_group:` on each member instance (src/vrrp/sync.ts applies
// keepalived's rules: the members fail over as one). Pure.
//
// In keepalived's LVS-NAT recipe VI_1 holds the VIP on the client side, a second instance the real
// servers' gateway on the server side, and the group moves both. Each member keeps its own VRID,
// priority and adverts, as in keepalived.

import type { Stmt } from './parse';

const child = (s: Stmt, kw: string) => s.children?.find((c) => c.keyword === kw);
const where = (s: Stmt) => `${s.file}:${s.line}`;
const text = (s: Stmt) => [s.keyword, ...s.args].join(' ');

export interface SyncGroups {
  /** Instance name -> its group's name (groups with at least two defined members). */
  groupOf: Map<string, string>;
  /** "file:line: statement: what is lost", as translate.ts lists them. */
  lost: string[];
}

/** The sync groups of a keepalived.conf: which instance belongs to which, and what is not kept. */
export function syncGroups(stmts: Stmt[]): SyncGroups {
  const instances = new Set(stmts.filter((s) => s.keyword === 'vrrp_instance' && s.args[0]).map((s) => s.args[0]!));
  const groupOf = new Map<string, string>();
  const lost: string[] = [];
  for (const g of stmts.filter((s) => s.keyword === 'vrrp_sync_group')) {
    const name = (g.args[0] ?? 'VG').replace(/[^A-Za-z0-9_.:-]/g, '_');
    for (const c of g.children ?? []) {
      if (c.keyword !== 'group')
        lost.push(
          `${where(c)}: ${text(c)}: the sync group's own ${c.keyword} is not kept (each member's notify and tracking apply, and a member's fault faults the group)`,
        );
    }
    const names = (child(g, 'group')?.children ?? []).flatMap((c) => [c.keyword, ...c.args]);
    const missing = names.filter((n) => !instances.has(n));
    const members = names.filter((n) => instances.has(n) && !groupOf.has(n));
    for (const n of missing) lost.push(`${where(g)}: ${text(g)}: member ${n} is no vrrp_instance`);
    for (const n of names.filter((x) => groupOf.has(x)))
      lost.push(
        `${where(g)}: ${text(g)}: ${n} is already in sync group ${groupOf.get(n)}: an instance belongs to one group`,
      );
    if (members.length < 2) {
      lost.push(
        `${where(g)}: ${text(g)}: fewer than two members: no group (a lone instance fails over on its own anyway)`,
      );
      continue;
    }
    for (const n of members) groupOf.set(n, name);
  }
  return { groupOf, lost };
}
