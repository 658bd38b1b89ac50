// `xdirector import-keepalived FILE [-o OUT] [--strict] [--interface IF] [--instance NAME]`:
// translate a keepalived.conf into an xdirector config, prove it loads, report what has no
// equivalent on stderr (always, whatever else happens), and write the config only when it loads,
// has a service to run, and (with --strict) nothing was left out.
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';
import { parseSubcommandArgs } from '../subcommand';
import { parseConfig } from '../config';
import { parseKeepalivedFile } from './parse';
import { translateKeepalived } from './translate';

export const IMPORT_USAGE = `usage: xdirector import-keepalived FILE [-o OUT] [--strict] [--interface IF] [--instance NAME] [--config-id ID] [--tunnel-source ADDR]

Translate a keepalived.conf (with its includes) into an xdirector config.
  -o, --output OUT   write the config to OUT, making its directory if needed (default: standard output)
  --strict           exit 3 and write nothing when something has no equivalent (listed on standard error either way)
  --interface IF     the director interface when no vrrp_instance names one
  --instance NAME    instance name (default: global_defs router_id)
  --config-id ID     read the lines a keepalived started with -i ID reads (@ID conditional lines;
                     default: this host's name, as keepalived)
  --tunnel-source ADDR  the director's address real servers see on tunnelled packets (lb_kind TUN;
                     default: a vrrp_instance's unicast_src_ip of the same family)
Lines translated by judgement carry a "# keepalived:" comment; parts that cannot be translated are
left in as comments saying why.
Exit status: 0 written; 1 the translation does not load (a bug: please report it); 2 usage;
3 --strict and something has no equivalent; 4 no virtual_server could be translated.`;

/** Where the command writes: the config (without -o) and the report. */
export interface ImportIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: ImportIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

/** Exit codes: 0 done, 1 the result does not load (a bug: reported), 2 usage, 3 --strict and something was left out, 4 nothing to run. */
export async function importKeepalivedMain(argv: string[], io: ImportIo = processIo): Promise<number> {
  const parsed = parseSubcommandArgs('import-keepalived', IMPORT_USAGE, {
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      strict: { type: 'boolean' },
      interface: { type: 'string' },
      instance: { type: 'string' },
      'tunnel-source': { type: 'string', multiple: true },
      'config-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1)
    throw new XdError('XD_ERR_USAGE', `import-keepalived needs one keepalived.conf file\n${IMPORT_USAGE}`);
  const file = positionals[0]!;
  const warnings: string[] = [];
  const result = translateKeepalived(parseKeepalivedFile(file, { warnings, configId: values['config-id'] }), {
    interface: values.interface,
    instance: values.instance,
    tunnelSource: values['tunnel-source'],
  });
  const err = (s: string) => io.stderr(`import-keepalived: ${s}\n`);
  for (const w of warnings) err(`warning: ${w}`);
  if (result.unsupported.length) {
    err(`${result.unsupported.length} statement(s) have no xdirector equivalent:`);
    for (const u of result.unsupported) io.stderr(`  ${u}\n`);
  }
  // The output must load: a translation check-config refuses is a bug, reported as such and never written.
  try {
    for (const w of parseConfig(result.yaml, values.output ?? `${file} (imported)`).warnings) err(`warning: ${w}`);
  } catch (e) {
    err(
      `the translation does not load, so nothing was written; please report this with the input:\n${(e as Error).message}`,
    );
    return 1;
  }
  if (result.services === 0) {
    err(
      `no virtual_server of ${file} could be translated (listed above), so there is nothing to run and nothing was written: xdirector needs at least one service (a VIP, a port and real servers)`,
    );
    return 4;
  }
  if (values.strict && result.unsupported.length) {
    err(`--strict: ${result.unsupported.length} statement(s) have no equivalent (listed above): nothing was written`);
    return 3;
  }
  if (values.output) {
    // A first migration has no /etc/xdirector yet: make it (as mkdir -p would), so -o works as the README writes it.
    fs.mkdirSync(path.dirname(path.resolve(values.output)), { recursive: true, mode: 0o755 });
    fs.writeFileSync(values.output, result.yaml);
  } else io.stdout(result.yaml);
  err(
    `${result.judgements} line(s) translated by judgement (marked "# keepalived:")${values.output ? `; written to ${values.output}` : ''}`,
  );
  return 0;
}
