// `xdirector realserver setup|check|teardown --vip A [--vip B] [--sysctl-file PATH]` and
// `xdirector realserver grant [--user U] [--host H] [--heartbeat db.table]`.
import { XdError } from '../errors';
import { parseSubcommandArgs } from '../subcommand';
import { check, DEFAULT_SYSCTL_FILE, grantText, parseVip, setup, teardown } from './realserver';
import { DEFAULT_TUNNEL_STATE_FILE } from './tunnel';
import { NFT_TABLE_REF } from './filter';
import { DEFAULT_NAT_STATE_FILE, checkNat, parseGateways, setupNat, teardownNat } from './nat';

export const REALSERVER_USAGE = `usage: xdirector realserver setup|check|teardown --vip ADDR [--vip ADDR ...] [--tunnel [--director ADDR ...] [--encap ipip|gue] [--gue-port N] [--underlay 4|6] [--tunnel-state PATH]] [--sysctl-file PATH]
       xdirector realserver setup|check|teardown --nat --gateway ADDR [--gateway ADDR6] [--nat-state PATH]
       xdirector realserver grant [--user monitor] [--host DIRECTOR_HOST] [--heartbeat db.table]

Prepare a MySQL server behind an xdirector in DR mode (run it on the real server, as root):
  setup      add each VIP to lo (IPv6: nodad, deprecated), set arp_ignore=1 / arp_announce=2 and
             persist them in ${DEFAULT_SYSCTL_FILE}; prints the monitor GRANT
  check      report what is missing (exit 1 when anything is)
  teardown   remove the VIPs from lo, remove the sysctl file and restore the previous values
  grant      print the monitor account's CREATE USER / GRANT for MySQL 8 and MariaDB
  --tunnel   the director forwards over a tunnel (forwarding: tunnel): also create the decapsulating
             devices and relax a strict rp_filter (recorded in --tunnel-state, default
             ${DEFAULT_TUNNEL_STATE_FILE}; teardown puts it back); --encap ipip|gue (default ipip),
             --gue-port N (6080), --underlay 4|6|4,6 (this server's address families the director
             sends to; default 4)
  --director ADDR  (with --tunnel, repeatable) each director's tunnel source address: setup loads
             the nftables table ${NFT_TABLE_REF} accepting IP protocols 4/41 and the GUE port only
             from them (printed instead when nft is not installed); check flags a missing filter;
             teardown removes only what setup recorded creating (devices, GUE port, table)
  --nat      the director forwards with NAT (forwarding: nat): the server needs no VIP and no ARP
             sysctls, only its replies routed back through the director: setup makes --gateway
             (the director's inner address, one per family; with VRRP the address that moves with
             the VIP) the default route and records the default routes it replaced in --nat-state
             (default ${DEFAULT_NAT_STATE_FILE}); check reports where replies to clients go;
             teardown puts the recorded routes back`;

export async function realserverMain(argv: string[]): Promise<number> {
  const parsed = parseSubcommandArgs('realserver', REALSERVER_USAGE, {
    args: argv,
    allowPositionals: true,
    options: {
      vip: { type: 'string', multiple: true },
      director: { type: 'string', multiple: true },
      tunnel: { type: 'boolean' },
      encap: { type: 'string' },
      'gue-port': { type: 'string' },
      underlay: { type: 'string' },
      'sysctl-file': { type: 'string' },
      'tunnel-state': { type: 'string' },
      nat: { type: 'boolean' },
      gateway: { type: 'string', multiple: true },
      'nat-state': { type: 'string' },
      user: { type: 'string' },
      host: { type: 'string' },
      heartbeat: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const sub = positionals[0];
  if (sub === 'grant') {
    process.stdout.write(grantText({ user: values.user, host: values.host, heartbeat: values.heartbeat }) + '\n');
    return 0;
  }
  if (sub !== 'setup' && sub !== 'check' && sub !== 'teardown')
    throw new XdError('XD_ERR_USAGE', `realserver needs setup, check, teardown or grant\n${REALSERVER_USAGE}`);
  if (values.nat || values.gateway?.length || values['nat-state']) return natMain(sub, values);
  if (!values.vip?.length) throw new XdError('XD_ERR_USAGE', `realserver ${sub} needs at least one --vip ADDR`);
  const o = { vips: values.vip.map(parseVip), sysctlFile: values['sysctl-file'] };
  if (values['tunnel-state'] && !values.tunnel)
    throw new XdError(
      'XD_ERR_USAGE',
      `--tunnel-state is where --tunnel records the sysctls it changed: add --tunnel, or leave --tunnel-state out\n${REALSERVER_USAGE}`,
    );
  if (values.director?.length && !values.tunnel)
    throw new XdError(
      'XD_ERR_USAGE',
      `--director filters the tunnels of tunnel mode: add --tunnel, or leave --director out\n${REALSERVER_USAGE}`,
    );
  let tun: import('./tunnel').TunnelOptions | undefined;
  if (values.tunnel) {
    const encap = values.encap ?? 'ipip';
    if (encap !== 'ipip' && encap !== 'gue')
      throw new XdError('XD_ERR_USAGE', `--encap ${encap}: use ipip or gue (the service's encap)`);
    const underlay = (values.underlay ?? '4').split(',').map(Number);
    if (!underlay.length || underlay.some((f) => f !== 4 && f !== 6))
      throw new XdError(
        'XD_ERR_USAGE',
        `--underlay ${values.underlay}: use 4, 6 or 4,6 (the families of this server's own addresses the director tunnels to)`,
      );
    const guePort = values['gue-port'] === undefined ? undefined : Number(values['gue-port']);
    if (guePort !== undefined && !(Number.isInteger(guePort) && guePort > 0 && guePort < 65536))
      throw new XdError('XD_ERR_USAGE', `--gue-port ${values['gue-port']}: a port 1-65535`);
    tun = {
      underlay: underlay as (4 | 6)[],
      inner: [...new Set(o.vips.map((v) => v.family))],
      encap,
      ...(guePort ? { guePort } : {}),
      ...(values['tunnel-state'] ? { stateFile: values['tunnel-state'] } : {}),
      ...(values.director?.length ? { directors: values.director } : {}),
    };
  }
  const tunnel = tun ? await import('./tunnel') : undefined;
  if (sub === 'setup') {
    // The tunnel devices first: a kernel without them fails here, before anything else changed.
    const done = tun && tunnel ? await tunnel.setupTunnel(tun) : [];
    done.push(...(await setup(o)));
    process.stdout.write(done.length ? done.map((d) => `${d}\n`).join('') : 'nothing to do: already set up\n');
    process.stdout.write(
      `\nThe MySQL monitor account the director logs in with:\n${grantText({ user: values.user, host: values.host })}\n`,
    );
    return 0;
  }
  if (sub === 'check') {
    const found = [...(await check(o)), ...(tun && tunnel ? await tunnel.checkTunnel(tun) : [])];
    for (const f of found)
      process.stdout.write(`${f.ok ? 'ok     ' : 'MISSING'} ${f.what}${f.fix ? `\n        fix: ${f.fix}` : ''}\n`);
    const bad = found.filter((f) => !f.ok).length;
    process.stdout.write(
      bad
        ? `${bad} problem(s): run xdirector realserver setup --vip ...${tun ? ' --tunnel' : ''} or apply the fixes above\n`
        : `this server is ready for ${tun ? `tunnel mode (${tun.encap})` : 'DR'}\n`,
    );
    return bad ? 1 : 0;
  }
  const done = [...(tun && tunnel ? await tunnel.teardownTunnel(tun) : []), ...(await teardown(o))];
  process.stdout.write(done.length ? done.map((d) => `${d}\n`).join('') : 'nothing to do\n');
  return 0;
}

/** realserver setup|check|teardown --nat: the default route via the director's inner address, nothing else. */
async function natMain(
  sub: 'setup' | 'check' | 'teardown',
  values: {
    nat?: boolean;
    gateway?: string[];
    'nat-state'?: string;
    vip?: string[];
    tunnel?: boolean;
    director?: string[];
    'sysctl-file'?: string;
    user?: string;
    host?: string;
  },
): Promise<number> {
  if (!values.nat)
    throw new XdError('XD_ERR_USAGE', `--gateway and --nat-state belong to NAT mode: add --nat\n${REALSERVER_USAGE}`);
  if (values.tunnel)
    throw new XdError(
      'XD_ERR_USAGE',
      '--nat and --tunnel are two forwarding modes: a service forwards with one; run realserver once per mode',
    );
  if (values.vip?.length)
    throw new XdError(
      'XD_ERR_USAGE',
      `--nat needs no VIP on this server (the director rewrites the VIP to this server's address): leave --vip out${sub === 'teardown' ? ', and run realserver teardown --vip ... separately to remove a DR setup' : ''}`,
    );
  if (values.director?.length || values['sysctl-file'])
    throw new XdError(
      'XD_ERR_USAGE',
      `--nat uses neither --director nor --sysctl-file (it changes no sysctl): leave them out`,
    );
  if (!values.gateway?.length)
    throw new XdError(
      'XD_ERR_USAGE',
      `realserver ${sub} --nat needs --gateway ADDR: the director's inner address on this server's network (with VRRP, the address that moves with the VIP)`,
    );
  const o = {
    gateways: parseGateways(values.gateway),
    ...(values['nat-state'] ? { stateFile: values['nat-state'] } : {}),
  };
  if (sub === 'setup') {
    const done = await setupNat(o);
    process.stdout.write(done.length ? done.map((d) => `${d}\n`).join('') : 'nothing to do: already set up\n');
    process.stdout.write(
      `\nThe MySQL monitor account the director logs in with:\n${grantText({ user: values.user, host: values.host })}\n`,
    );
    return 0;
  }
  if (sub === 'check') {
    const found = await checkNat(o);
    for (const f of found)
      process.stdout.write(`${f.ok ? 'ok     ' : 'MISSING'} ${f.what}${f.fix ? `\n        fix: ${f.fix}` : ''}\n`);
    const bad = found.filter((f) => !f.ok).length;
    process.stdout.write(
      bad
        ? `${bad} problem(s): run xdirector realserver setup --nat --gateway ... or apply the fixes above\n`
        : 'this server is ready for NAT\n',
    );
    return bad ? 1 : 0;
  }
  const done = await teardownNat(o);
  process.stdout.write(done.length ? done.map((d) => `${d}\n`).join('') : 'nothing to do\n');
  return 0;
}
