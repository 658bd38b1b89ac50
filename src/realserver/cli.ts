// `xdirector realserver setup|check|teardown --vip A [--vip B] [--sysctl-file PATH]` and
// `xdirector realserver grant [--user U] [--host H] [--heartbeat db.table]`.
import { parseArgs } from 'node:util';
import { XdError } from '../errors';
import { check, DEFAULT_SYSCTL_FILE, grantText, parseVip, setup, teardown } from './realserver';

export const REALSERVER_USAGE = `usage: xdirector realserver setup|check|teardown --vip ADDR [--vip ADDR ...] [--tunnel] [--sysctl-file PATH]
       xdirector realserver grant [--user monitor] [--host DIRECTOR_HOST] [--heartbeat db.table]

Prepare a MySQL server behind an xdirector in DR mode (run it on the real server, as root):
  setup      add each VIP to lo (IPv6: nodad, deprecated), set arp_ignore=1 / arp_announce=2 and
             persist them in ${DEFAULT_SYSCTL_FILE}; prints the monitor GRANT
  check      report what is missing (exit 1 when anything is)
  teardown   remove the VIPs from lo, remove the sysctl file and restore the previous values
  grant      print the monitor account's CREATE USER / GRANT for MySQL 8 and MariaDB
  --tunnel   the director forwards over IPIP/IP6IP6 (forwarding: tunnel) instead of DR`;

export async function realserverMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        vip: { type: 'string', multiple: true },
        tunnel: { type: 'boolean' },
        'sysctl-file': { type: 'string' },
        user: { type: 'string' },
        host: { type: 'string' },
        heartbeat: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new XdError('XD_ERR_USAGE', `realserver: ${(err as Error).message}\n${REALSERVER_USAGE}`);
  }
  const { values, positionals } = parsed;
  const sub = positionals[0];
  if (values.help) {
    process.stdout.write(REALSERVER_USAGE + '\n');
    return 0;
  }
  if (sub === 'grant') {
    process.stdout.write(grantText({ user: values.user, host: values.host, heartbeat: values.heartbeat }) + '\n');
    return 0;
  }
  if (sub !== 'setup' && sub !== 'check' && sub !== 'teardown') throw new XdError('XD_ERR_USAGE', `realserver needs setup, check, teardown or grant\n${REALSERVER_USAGE}`);
  if (!values.vip?.length) throw new XdError('XD_ERR_USAGE', `realserver ${sub} needs at least one --vip ADDR`);
  if (values.tunnel) throw new XdError('XD_ERR_USAGE', 'realserver --tunnel: tunnel forwarding is not in this build (lb_kind TUN / forwarding: tunnel)');
  const o = { vips: values.vip.map(parseVip), sysctlFile: values['sysctl-file'] };
  if (sub === 'setup') {
    const done = await setup(o);
    process.stdout.write(done.length ? done.map((d) => `${d}\n`).join('') : 'nothing to do: already set up\n');
    process.stdout.write(`\nThe MySQL monitor account the director logs in with:\n${grantText({ user: values.user, host: values.host })}\n`);
    return 0;
  }
  if (sub === 'check') {
    const found = await check(o);
    for (const f of found) process.stdout.write(`${f.ok ? 'ok     ' : 'MISSING'} ${f.what}${f.fix ? `\n        fix: ${f.fix}` : ''}\n`);
    const bad = found.filter((f) => !f.ok).length;
    process.stdout.write(bad ? `${bad} problem(s): run xdirector realserver setup --vip ... or apply the fixes above\n` : 'this server is ready for DR\n');
    return bad ? 1 : 0;
  }
  const done = await teardown(o);
  process.stdout.write(done.length ? done.map((d) => `${d}\n`).join('') : 'nothing to do\n');
  return 0;
}
