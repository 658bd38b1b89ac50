// The real server's tunnel filter: the decapsulating devices of tunnel mode (tunnel.ts) are in
// `external` (collect_md) mode and the sit fallback device takes any remote, so without a
// filter anyone who can reach the server can hand it a packet "from" any client address (IPIP,
// 6in4, GUE). `realserver setup --tunnel --director ADDR` loads one nftables table of its own
// that accepts IP protocols 4 (IPv4 inside) and 41 (IPv6 inside) and the GUE UDP port only from
// the directors and drops them from anyone else; everything else is left to the host's own
// rules (policy accept). The table is replaced whole, in one nft transaction.
//
// It hooks input: the outer packet is filtered before the ipip / sit / ip6tnl handlers or the fou
// socket see it; the decapsulated inner packet comes back through input on the tunnel device as
// ordinary TCP and is not matched here.
//
// filterRuleset() is pure; the rest runs `nft` in the caller's network namespace.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';
import { parseAddress } from '../net/inet';

/** family and name of the table (its own: the host's other tables are never touched). */
export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'xdirector_rs';
export const NFT_TABLE_REF = `${NFT_FAMILY} ${NFT_TABLE}`;

export interface FilterOptions {
  /** The directors' addresses (the tunnels' outer source addresses: tunnel.source_v4 / source_v6). */
  directors: string[];
  /** GUE's UDP port, when GUE is received. */
  guePort?: number;
}

/** Canonical director addresses by family; XD_ERR_USAGE for one that is not an address. */
export function directorSets(directors: readonly string[]): { v4: string[]; v6: string[] } {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const d of directors) {
    const a = parseAddress(d.trim());
    if (!a)
      throw new XdError(
        'XD_ERR_USAGE',
        `--director ${d}: not an IP address (give each director's tunnel source address, tunnel.source_v4 / source_v6 in its config)`,
      );
    (a.family === 4 ? v4 : v6).add(a.text);
  }
  return { v4: [...v4].sort(), v6: [...v6].sort() };
}

/** The nft script that (re)places the table: accepted from the directors, dropped from anyone else (pure). */
export function filterRuleset(o: FilterOptions): string {
  const { v4, v6 } = directorSets(o.directors);
  const set = (name: string, type: string, elems: string[]) =>
    `  set ${name} {\n    type ${type}\n${elems.length ? `    elements = { ${elems.join(', ')} }\n` : ''}  }`;
  return [
    // Create if missing, then delete and load it whole: one transaction, no window without the filter's new form.
    `table ${NFT_TABLE_REF}`,
    `delete table ${NFT_TABLE_REF}`,
    `table ${NFT_TABLE_REF} {`,
    set('directors_v4', 'ipv4_addr', v4),
    set('directors_v6', 'ipv6_addr', v6),
    '  chain input {',
    '    type filter hook input priority -10; policy accept;',
    '    meta l4proto { 4, 41 } ip saddr @directors_v4 accept',
    '    meta l4proto { 4, 41 } ip6 saddr @directors_v6 accept',
    '    meta l4proto { 4, 41 } counter drop comment "tunnel not from a director"',
    ...(o.guePort
      ? [
          `    udp dport ${o.guePort} ip saddr @directors_v4 accept`,
          `    udp dport ${o.guePort} counter drop comment "GUE not from a director"`,
        ]
      : []),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The nft program on PATH (what `command -v nft` finds), or undefined. */
export function findNft(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, 'nft');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

async function nft(bin: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err)
        reject(
          new XdError('XD_ERR_REALSERVER', `nft ${args.join(' ')}: ${(stderr || err.message).trim()}`, { cause: err }),
        );
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Loads the table. Returns false (nothing done) when nft is not installed. */
export async function loadFilter(o: FilterOptions): Promise<boolean> {
  const bin = findNft();
  if (!bin) return false;
  await nft(bin, ['-f', '-'], filterRuleset(o));
  return true;
}

/** The table as the kernel holds it: its director sets, or undefined when there is none. */
export async function readFilter(): Promise<{ v4: string[]; v6: string[]; hooked: boolean } | undefined> {
  const bin = findNft();
  if (!bin) throw new XdError('XD_ERR_REALSERVER', 'nft is not installed');
  let text: string;
  try {
    text = await nft(bin, ['-j', 'list', 'table', NFT_FAMILY, NFT_TABLE]);
  } catch (err) {
    const msg = (err as Error).message;
    if (/No such file or directory|does not exist/i.test(msg)) return undefined;
    // nft is installed but the kernel has no nf_tables (built without it, module not loaded).
    if (/Protocol not supported|Unable to initialize Netlink socket/i.test(msg)) {
      throw new XdError('XD_ERR_REALSERVER', `nftables is not available in this kernel (${msg})`, {
        cause: err,
        detail: { nfTablesMissing: true },
      });
    }
    throw err;
  }
  const items = (JSON.parse(text) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
  const elems = (name: string) => {
    const s = items.find((i) => i.set && i.set.name === name)?.set;
    return ((s?.elem as unknown[] | undefined) ?? [])
      .filter((e): e is string => typeof e === 'string')
      .map((e) => parseAddress(e)?.text ?? e)
      .sort();
  };
  const hooked = items.some((i) => i.chain && i.chain.hook === 'input');
  return { v4: elems('directors_v4'), v6: elems('directors_v6'), hooked };
}

/** Deletes the table if it exists. Returns whether it did. */
export async function removeFilter(): Promise<boolean> {
  const bin = findNft();
  if (!bin) return false;
  if (!(await readFilter())) return false;
  await nft(bin, ['delete', 'table', NFT_FAMILY, NFT_TABLE]);
  return true;
}
