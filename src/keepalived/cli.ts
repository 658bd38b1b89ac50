// `xdirector import-keepalived FILE [-o OUT] [--strict] [--interface IF] [--instance NAME]`:
// translate a keepalived.conf into an xdirector config, prove it loads, report what has no
// equivalent on stderr (exit 3 with --strict when anything does).
import fs from 'node:fs';
import { XdError } from '../errors';
import { parseSubcommandArgs } from '../subcommand';
import { parseConfig } from '../config';
import { parseKeepalivedFile } from './parse';
import { translateKeepalived } from './translate';

export const IMPORT_USAGE = `usage: xdirector import-keepalived FILE [-o OUT] [--strict] [--interface IF] [--instance NAME] [--tunnel-source ADDR]

Translate a keepalived.conf (with its includes) into an xdirector config.
  -o, --output OUT   write the config to OUT (default: standard output)
  --strict           exit 3 when something has no equivalent (listed on standard error either way)
  --interface IF     the director interface when no vrrp_instance names one
  --instance NAME    instance name (default: global_defs router_id)
  --tunnel-source ADDR  the director's address real servers see on tunnelled packets (lb_kind TUN;
                     default: a vrrp_instance's unicast_src_ip of the same family)
Lines translated by judgement carry a "# keepalived:" comment.`;

/** Exit codes: 0 done, 1 the result does not load (a bug: reported), 2 usage, 3 --strict and something was left out. */
export async function importKeepalivedMain(argv: string[]): Promise<number> {
  const parsed = parseSubcommandArgs('import-keepalived', IMPORT_USAGE, {
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      strict: { type: 'boolean' },
      interface: { type: 'string' },
      instance: { type: 'string' },
      'tunnel-source': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new XdError('XD_ERR_USAGE', `import-keepalived needs one keepalived.conf file\n${IMPORT_USAGE}`);
  const file = positionals[0]!;
  const result = translateKeepalived(parseKeepalivedFile(file), { interface: values.interface, instance: values.instance, tunnelSource: values['tunnel-source'] });
  // The output must load: a translation check-config refuses is a bug, reported as such.
  try {
    parseConfig(result.yaml, values.output ?? `${file} (imported)`);
  } catch (err) {
    process.stderr.write(`import-keepalived: the translation does not load; please report this with the input:\n${(err as Error).message}\n`);
    process.stdout.write(result.yaml);
    return 1;
  }
  if (values.output) fs.writeFileSync(values.output, result.yaml);
  else process.stdout.write(result.yaml);
  if (result.unsupported.length) {
    process.stderr.write(`import-keepalived: ${result.unsupported.length} statement(s) have no xdirector equivalent:\n`);
    for (const u of result.unsupported) process.stderr.write(`  ${u}\n`);
  }
  process.stderr.write(`import-keepalived: ${result.judgements} line(s) translated by judgement (marked "# keepalived:")${values.output ? `; written to ${values.output}` : ''}\n`);
  return values.strict && result.unsupported.length ? 3 : 0;
}
