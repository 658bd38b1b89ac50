// Argument parsing shared by the `xdirector` subcommands that live beside their part
// (`import-keepalived` in keepalived/cli.ts, `realserver` in realserver/cli.ts).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { XdError } from './errors';

/**
 * node's parseArgs over `config`, for subcommand `command` with usage text `usage`:
 * a parse error becomes XD_ERR_USAGE "COMMAND: what is wrong" followed by the usage;
 * `--help` (the options must declare it) prints the usage and returns undefined, and the
 * caller exits 0.
 */
export function parseSubcommandArgs<T extends ParseArgsConfig>(
  command: string,
  usage: string,
  config: T,
): ReturnType<typeof parseArgs<T>> | undefined {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    throw new XdError('XD_ERR_USAGE', `${command}: ${(err as Error).message}\n${usage}`);
  }
  if ((parsed.values as Record<string, unknown>).help === true) {
    process.stdout.write(usage + '\n');
    return undefined;
  }
  return parsed;
}
