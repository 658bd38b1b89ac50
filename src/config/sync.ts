// The `sync:` section: connection sync between directors (src/sync). Pure: validation and
// defaults only.
//
//   sync:
//     source: 10.0.0.2            # this director's address on the sync network (bound, sent from)
//     peers: [10.0.0.3]           # unicast: the other directors (VRRP peer, every BGP director) ...
//     multicast: 239.255.88.50    # ... or one multicast group on the config's interface
//     port: 8850                  # UDP (default 8850; IPVS's own sync daemon uses 8848)
//     key_file: /etc/xdirector/sync.key   # HMAC key, the same on every director (mode 0600)
//     max_import_rate: 100000     # entries/s installed from all peers together
//     silent_after: 3s            # a peer that sent nothing (not even a heartbeat) this long: alert
import { z } from 'zod';
import { address, absPath, int, leaf, show } from './fields';
import { duration } from './duration';
import { parseAddress } from '../net/inet';

export const DEFAULT_SYNC_PORT = 8850;

const multicastGroup = leaf<{ address: string; family: 4 | 6 }>(
  (v) => {
    const a = typeof v === 'string' ? parseAddress(v.trim()) : undefined;
    if (!a)
      return {
        problem: `must be a multicast group address, got ${show(v)} (write e.g. "239.255.88.50" or "ff02::8850")`,
      };
    const mc = a.family === 4 ? a.words[0]! >>> 28 === 0xe : a.words[0]! >>> 24 === 0xff;
    if (!mc)
      return {
        problem: `${show(v)} is not a multicast address: use one in 224.0.0.0/4 (e.g. 239.255.88.50) or ff00::/8, or list the peers instead`,
      };
    return { value: { address: a.text, family: a.family as 4 | 6 } };
  },
  { optional: true },
);

const syncFields = z.strictObject({
  source: address(),
  peers: z.array(address()).max(64, 'at most 64 peers').optional(),
  multicast: multicastGroup,
  port: int(1, 65535, { default: DEFAULT_SYNC_PORT }),
  key_file: absPath(),
  max_import_rate: int(1, 10_000_000, { default: 100_000 }),
  silent_after: duration({ default: 3000, min: 500, max: 600_000 }),
});

export type RawSyncConfig = z.output<typeof syncFields>;

export const syncSchema = syncFields.superRefine((v, ctx) => {
  for (const p of syncProblems(v)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
});

export interface SyncConfig {
  source: string;
  family: 4 | 6;
  /** Unicast peers (empty with multicast). */
  peers: string[];
  multicast?: string;
  port: number;
  keyFile: string;
  maxImportRate: number;
  silentAfterMs: number;
}

/** Cross-field problems of a parsed sync section (paths relative to `sync`). */
export function syncProblems(raw: RawSyncConfig): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const peers = raw.peers ?? [];
  if (peers.length === 0 && !raw.multicast)
    out.push({
      path: [],
      message: "list the peers (the other directors' sync source addresses) or give a multicast group",
    });
  if (peers.length > 0 && raw.multicast)
    out.push({ path: ['multicast'], message: 'give peers or multicast, not both' });
  peers.forEach((p, i) => {
    if (p.address === raw.source.address)
      out.push({
        path: ['peers', i],
        message: `${p.address} is this director's own sync source: list only the other directors`,
      });
    if (p.family !== raw.source.family)
      out.push({
        path: ['peers', i],
        message: `${p.address} is IPv${p.family} but source ${raw.source.address} is IPv${raw.source.family}: use one family for sync`,
      });
    if (peers.findIndex((q) => q.address === p.address) !== i)
      out.push({ path: ['peers', i], message: `${p.address} is listed twice` });
  });
  if (raw.multicast && raw.multicast.family !== raw.source.family)
    out.push({
      path: ['multicast'],
      message: `the group is IPv${raw.multicast.family} but source ${raw.source.address} is IPv${raw.source.family}: use one family for sync`,
    });
  return out;
}

export function finishSync(raw: RawSyncConfig): SyncConfig {
  return {
    source: raw.source.address,
    family: raw.source.family as 4 | 6,
    peers: (raw.peers ?? []).map((p) => p.address),
    ...(raw.multicast ? { multicast: raw.multicast.address } : {}),
    port: raw.port,
    keyFile: raw.key_file,
    maxImportRate: raw.max_import_rate,
    silentAfterMs: raw.silent_after,
  };
}
