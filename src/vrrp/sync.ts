// Sync groups (keepalived's vrrp_sync_group): instances that fail over as one, as LVS-NAT's VIP on
// the client side and the real servers' gateway on the server side must. The rules keepalived
// applies (vrrp_sync.c), on each member's transition:
// - a member becomes Master only when every member wants to (its own election says Master), and
//   then the others follow at once: a director never holds the VIP without the gateway;
// - a member leaving Master for Backup takes the others with it (priority 0, so the peer's members
//   take over after their skew time);
// - a member in Fault faults the others; they leave Fault together once no member is faulted.
// (One instance with VIPs on several interfaces, `addr/prefix dev IFACE`, is the simpler form of
// the same; a group keeps each member's own VRID and adverts on its own interface.)

import type { TransitionInfo } from './machine';

/** What a group needs of a member (SyncMember; an interface here so sync.ts does not import instance.ts). */
export interface SyncMember {
  readonly cfg: { name: string; sync_group?: string };
  readonly wantsMaster: boolean;
  readonly ownFault: boolean;
  syncMaster(reason: string): void;
  syncBackup(reason: string): void;
  syncFault(reason: string): void;
  syncFaultCleared(reason: string): void;
  joinSyncGroup(g: SyncGroup): void;
}

export class SyncGroup {
  private readonly members: SyncMember[] = [];

  constructor(readonly name: string) {}

  add(i: SyncMember): void {
    this.members.push(i);
  }

  get memberNames(): string[] {
    return this.members.map((m) => m.cfg.name);
  }

  /** Every other member wants (or holds) Master. */
  mayBecomeMaster(self: SyncMember): boolean {
    return this.members.every((m) => m === self || m.wantsMaster);
  }

  /** No other member is in Fault of its own. */
  mayLeaveFault(self: SyncMember): boolean {
    return this.members.every((m) => m === self || !m.ownFault);
  }

  /** One member's transition moves the others. */
  transition(from: SyncMember, t: TransitionInfo): void {
    const why = `sync group ${this.name}: ${from.cfg.name} went ${t.to}`;
    for (const m of this.members) {
      if (m === from) continue;
      if (t.to === 'MASTER') m.syncMaster(why);
      else if (t.from === 'MASTER' && t.to === 'BACKUP') m.syncBackup(why);
      else if (t.to === 'FAULT') m.syncFault(why);
      else if (t.from === 'FAULT' && t.to === 'BACKUP' && this.members.every((x) => !x.ownFault))
        m.syncFaultCleared(why);
    }
  }
}

/** Put the instances that name the same sync_group in one group (before they start). */
export function wireSyncGroups(instances: readonly SyncMember[]): SyncGroup[] {
  const groups = new Map<string, SyncGroup>();
  for (const i of instances) {
    const name = i.cfg.sync_group;
    if (!name) continue;
    let g = groups.get(name);
    if (!g) groups.set(name, (g = new SyncGroup(name)));
    g.add(i);
    i.joinSyncGroup(g);
  }
  return [...groups.values()];
}
