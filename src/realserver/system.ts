// The two ways the real-server setup touches the host: the `ip` command and /proc/sys.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { XdError } from '../errors';

const exec = promisify(execFile);

/** /proc/sys path of a dotted sysctl key (net.ipv4.conf.all.rp_filter). */
export const sysctlPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

/** Runs `ip ARGS`; its standard output, or XD_ERR_REALSERVER naming the command and ip's complaint. */
export async function ip(args: string[]): Promise<string> {
  try {
    return (await exec('ip', args, { encoding: 'utf8' })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new XdError('XD_ERR_REALSERVER', `ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}
