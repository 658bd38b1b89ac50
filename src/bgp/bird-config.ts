// BIRD 2 configuration for one director. Pure.
//
// Each announced VIP is its own static protocol holding one /32 (/128) route, created
// `disabled`: announcing is `enable vip…`, withdrawing is `disable vip…` over the control
// socket, so the daemon never rewrites the config to move a route. Each neighbour is one BGP
// protocol that exports static routes only and imports nothing (the director never
// routes by what it learns); the routes never reach the kernel (there is no kernel protocol).
// The kernel's only view of a VIP is the daemon's `local VIP dev lo` route (vip-routes.ts).
import type { BgpConfig } from '../config';
import { XdError } from '../errors';

/** BIRD protocol name for a VIP: "vip4_10_77_0_100", "vip6_fd77__100". */
export function vipProtocol(vip: string): string {
  const fam = vip.includes(':') ? 6 : 4;
  return `vip${fam}_${vip.replace(/[^0-9A-Za-z]/g, '_')}`;
}

/** BIRD protocol name for a neighbour. */
export function peerProtocol(name: string): string {
  return `peer_${name}`;
}

const sec = (ms: number) => Math.max(1, Math.round(ms / 1000));
/**
 * A BIRD config string. BIRD 2 reads no escapes in strings, so what cannot be written as itself
 * is refused, never stripped (a stripped MD5 key silently stops matching the router's).
 */
function quote(s: string, what: string): string {
  if (/["\\\n\r\0]/.test(s))
    throw new XdError(
      'XD_ERR_BGP',
      `${what} contains a double quote, backslash, NUL or line break, which BIRD's config cannot carry: change it (xdirector check-config names the key)`,
    );
  return `"${s}"`;
}

export interface RenderOptions {
  /** Neighbour name → TCP MD5 key (inline passwords and the contents of password files). */
  passwords?: Map<string, string>;
}

export function renderBirdConfig(cfg: BgpConfig, opts: RenderOptions = {}): string {
  const lines: string[] = [
    '# Written by xdirector: do not edit (it is rewritten on every start).',
    `router id ${cfg.routerId};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    '',
    '# Interfaces and their addresses (BGP needs them to find directly connected neighbours).',
    'protocol device {}',
    '',
  ];
  if (cfg.neighbours.some((n) => n.bfd)) {
    lines.push(
      '# BFD: a dead director is noticed in min_rx x multiplier instead of the hold time.',
      'protocol bfd xd_bfd {',
      `  interface "*" { min rx interval ${cfg.bfd.minRxMs} ms; min tx interval ${cfg.bfd.minTxMs} ms; multiplier ${cfg.bfd.multiplier}; };`,
      '}',
      '',
    );
  }
  for (const a of cfg.announce) {
    const attrs: string[] = [];
    if (a.med !== undefined) attrs.push(`bgp_med = ${a.med};`);
    for (const [hi, lo] of a.communities) attrs.push(`bgp_community.add((${hi},${lo}));`);
    lines.push(
      `# ${a.vip}: enabled while this director can serve it.`,
      `protocol static ${vipProtocol(a.vip)} {`,
      '  disabled;',
      `  ipv${a.family};`,
      `  route ${a.vip}/${a.family === 4 ? 32 : 128} blackhole${attrs.length ? ` { ${attrs.join(' ')} }` : ''};`,
      '}',
      '',
    );
  }
  for (const n of cfg.neighbours) {
    const pw = opts.passwords?.get(n.name);
    const fams = [...new Set(cfg.announce.filter((a) => a.family === n.family).map((a) => a.family))];
    const vips = cfg.announce.filter((a) => a.family === n.family);
    lines.push(
      `protocol bgp ${peerProtocol(n.name)} {`,
      `  local as ${cfg.localAs};`,
      `  neighbor ${n.address} as ${n.as};`,
      `  hold time ${sec(n.holdTimeMs)};`,
      `  keepalive time ${sec(n.keepaliveMs)};`,
      `  connect retry time 1;`,
      `  error wait time 1, 10;`,
      ...(n.bfd ? ['  bfd on;'] : []),
      ...(pw !== undefined ? [`  password ${quote(pw, `bgp neighbour ${n.name}: the TCP MD5 password`)};`] : []),
      ...(fams.length ? fams : [n.family]).map(
        (f) => `  ipv${f} { import none; export ${vips.length ? 'where source = RTS_STATIC' : 'none'}; };`,
      ),
      '}',
      '',
    );
  }
  return lines.join('\n');
}
