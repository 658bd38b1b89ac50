// `xdirector bench` / `npm run bench` entry point:
//   node dist/scripts/bench/cli.js [--quick] [--out DIR] [--only testrun,pktrate,mysql,maglev,failover,scale]
// Progress lines go to stderr, the markdown summary to stdout, files to DIR.
import { XdError } from '../../src/errors';
import { createLogger } from '../../src/log';
import { runBench, SECTION_NAMES } from './index';
import { markdown } from './report';
import type { SectionName } from './types';

export const USAGE = `usage: xdirector bench [--quick] [--out DIR] [--only SECTIONS]

Benchmarks the director against the alternatives on this machine, in one run:
  testrun   ns/packet under BPF_PROG_TEST_RUN, against a no-op program; DR vs tunnel (repeat=1)
  pktrate   Mpps through veth: director vs the no-op XDP_TX ceiling at 16, 4096 and 1M flows
            (native and generic), tunnel (IPIP, GUE) vs DR, kernel forwarding
  mysql     MySQL connections/s and queries/s: XDP VIP, direct, HAProxy TCP mode
  maglev    table build time, balance, disruption
  failover  health-detection times (VRRP failover: not available in this suite)
  scale     the packet path at scale, against the no-op in one run: 1M and 4096 flows, a spoofed-SYN
            flood with established flows inside, tunnel vs DR, the SYN test run, memory per flow

  --quick          a short smoke run (seconds per section; numbers are noisy)
  --out DIR        where to write <timestamp>.json/.md/*.svg (default bench-results)
  --only LIST      comma-separated sections (default all)
Needs root for testrun, pktrate, mysql and scale (namespaces, XDP).`;

export interface CliArgs {
  quick: boolean;
  outDir: string;
  only?: SectionName[];
  help: boolean;
}

export function parseArgs(argv: string[]): CliArgs {
  const a: CliArgs = { quick: false, outDir: 'bench-results', help: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new XdError('XD_ERR_USAGE', `${x} needs a value\n${USAGE}`);
      return v;
    };
    if (x === '--quick') a.quick = true;
    else if (x === '--out') a.outDir = value();
    else if (x.startsWith('--out=')) a.outDir = x.slice(6);
    else if (x === '--only' || x.startsWith('--only=')) {
      const list = (x === '--only' ? value() : x.slice(7))
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const s of list) {
        if (!SECTION_NAMES.includes(s as SectionName))
          throw new XdError('XD_ERR_USAGE', `--only: unknown section "${s}": use ${SECTION_NAMES.join(', ')}`);
      }
      a.only = list as SectionName[];
    } else if (x === '-h' || x === '--help') a.help = true;
    else throw new XdError('XD_ERR_USAGE', `unknown argument "${x}"\n${USAGE}`);
  }
  return a;
}

/** Runs the CLI; resolves to the process exit code (1 when any section failed). */
export async function main(argv: string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const log = createLogger({ level: process.env.XDIRECTOR_LOG_LEVEL ?? 'warn' });
  const t0 = Date.now();
  const progress = (m: string): void => {
    process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}\n`);
  };
  // Ctrl-C: stop now; the namespaces, pins and servers of this run carry its pid
  // and the next run removes them (cleanup.ts) once this process is gone.
  process.once('SIGINT', () => {
    process.stderr.write('\nxdirector bench: interrupted; the next run removes what this one left behind\n');
    process.exit(130);
  });
  const r = await runBench({ quick: args.quick, outDir: args.outDir, only: args.only, log, progress });
  process.stdout.write(markdown(r) + '\n');
  process.stdout.write(`\nwritten: ${r.files.join(', ')}\n`);
  return Object.values(r.sections).some((s) => s?.status === 'error') ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`xdirector bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
