// `xdirector` command line. Every command but `run` is a thin client of the
// admin API (or, for check-config and stop --detach, works without a daemon).
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';
import { DEFAULT_SOCKET_DIR, defaultSocketPath } from '../defaults';
import { hostPort } from '../net/inet';
import { apiCall, apiRequest } from '../api/client';
import type { ApiMessage } from '../api/server';
import type { DaemonStatus } from '../daemon/status';
import { formatRates, formatStatus, statusJson } from './format';
import { parseSubcommandArgs } from '../subcommand';
import { xdirectorVersion } from '../version';
import { missingRunCapabilities, RUN_AS_ROOT } from './privileges';

/** How long `xdirector dataplane` waits for the switch's answer. */
const DATAPLANE_SWITCH_TIMEOUT_MS = 180_000;

const USAGE = `usage: xdirector <command> [options]

commands:
  run -c FILE [--log-level L]     run the director in the foreground (SIGTERM/SIGINT stop it and keep
                                  the XDP program and maps for a hot restart; SIGHUP reloads the config)
  check-config -c FILE            validate a config file and print the services it describes
  status [--json] [--exact] [--rate]
                                  services, backends, health, flows and counters (like ipvsadm -Ln --stats);
                                  --rate: connections, packets and bytes per second (like ipvsadm -Ln --rate)
  drain TARGET | undrain TARGET   no new flows to a backend; established flows finish. TARGET is BACKEND
                                  (name or address:port, in every service) or SERVICE/BACKEND (one service)
  maint TARGET | unmaint TARGET   maintenance (HAProxy's MAINT): no new flows and established flows end
  weight TARGET N | weight TARGET --reset
                                  set a backend's weight at run time (overrides the config's, kept across
                                  reload and restart) or return to the config's
  drain --director | undrain --director
                                  withdraw (re-announce) this director's BGP VIPs: the routers send new
                                  flows to the other directors; established flows finish
  dataplane xdp|ipvs              switch the live dataplane without moving a flow
  reload                          re-read the config file (same as SIGHUP)
  metrics                         Prometheus metrics
  check [-w N] [--critical N]     monitoring-plugin check (Nagios, Zabbix): one line, perfdata, exit 0-3
  stop [--detach]                 stop the daemon; --detach also removes the XDP program and pinned maps
                                  (works without a running daemon when given -c FILE)
  resign -c FILE                  after the daemon stopped (systemd ExecStopPost): remove the config's
                                  VRRP VIPs still on the interface; the XDP program and pins stay
  bench [--quick] [--out DIR]     benchmarks (see README)
  import-keepalived FILE [-o OUT] [--strict]
                                  translate a keepalived.conf into an xdirector config
  realserver setup|check|teardown --vip ADDR [--vip ADDR] | realserver grant
                                  prepare a real server for DR (VIPs on lo, ARP sysctls, monitor GRANT)

options for client commands: -c FILE (read instance and admin.socket from it), --socket PATH,
  --instance NAME (socket ${defaultSocketPath('NAME')})`;

async function socketFor(v: { config?: string; socket?: string; instance?: string }): Promise<string> {
  if (v.socket) return v.socket;
  if (v.config) {
    const { loadConfig } = await import('../config');
    const cfg = loadConfig(v.config);
    return cfg.admin.socket;
  }
  if (v.instance) return defaultSocketPath(v.instance);
  let socks: string[] = [];
  try {
    socks = fs.readdirSync(DEFAULT_SOCKET_DIR).filter((f) => f.endsWith('.sock'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM')
      throw new XdError(
        'XD_ERR_PERMISSION',
        `cannot list the running instances in ${DEFAULT_SOCKET_DIR} (${code}): ${RUN_AS_ROOT}`,
        { cause: err },
      );
  }
  if (socks.length === 1) return `${DEFAULT_SOCKET_DIR}/${socks[0]}`;
  throw new XdError(
    'XD_ERR_USAGE',
    socks.length === 0
      ? `no running xdirector found in ${DEFAULT_SOCKET_DIR}: give -c FILE or --socket PATH`
      : `several xdirector instances run (${socks.join(', ')}): choose one with --instance NAME, -c FILE or --socket PATH`,
  );
}

/**
 * `xdirector bench` runs the benchmark tooling of a source checkout (dist/scripts/bench, built
 * from scripts/bench). It is loaded only here, by path, so the product never imports it and the
 * published package (which ships no tooling) says what is missing instead of failing to load.
 */
async function runBench(args: string[]): Promise<number> {
  const entry = path.resolve(__dirname, '../../scripts/bench/cli.js');
  if (!fs.existsSync(entry)) {
    throw new XdError(
      'XD_ERR_USAGE',
      `xdirector bench: the benchmark tooling is not installed (${entry} is missing); it ships with the source checkout: run \`npm run bench\` there`,
    );
  }
  const bench = require(entry) as { main(argv: string[]): Promise<number | undefined> };
  return (await bench.main(args)) ?? 0;
}

/** One usage line and what it does, per command (`xdirector COMMAND --help`). */
const COMMAND_HELP: Record<string, string> = {
  run: 'usage: xdirector run -c FILE [--log-level L]\nRun the director in the foreground. SIGTERM/SIGINT stop it (the XDP program and maps stay for a hot\nrestart), SIGHUP reloads the config (a bad config is refused, the running one keeps serving).\nUnder systemd it sends READY=1 and WATCHDOG=1 (systemd/xdirector.service).',
  'check-config':
    'usage: xdirector check-config -c FILE\nValidate a config file and print the services it describes; errors name the file, key path and problem (exit 1).',
  status:
    "usage: xdirector status [--json] [--exact] [--rate]\nServices, backends (MAC, weight, state, health, role, lag, flows, packets, bytes), alerts and VRRP state.\n--exact prints counters in full instead of 12.3K / 4.5M.\n--rate prints per-second rates instead (CPS, InPPS, InBPS per service and backend, like ipvsadm -Ln --rate),\nfrom the daemon's counter samples 2 s apart; with --json, the rates as JSON. There is no OutPPS/OutBPS:\nreplies go from the real servers to the clients without passing the director.",
  drain:
    "usage: xdirector drain SERVICE/BACKEND | drain BACKEND | drain --director\nNo new flows to the backend (name or address:port) in that service, or in every service; established\nflows finish. Kept across restarts. --director withdraws this director's BGP VIPs.",
  undrain:
    'usage: xdirector undrain SERVICE/BACKEND | undrain BACKEND | undrain --director\nUndo drain (the same TARGET as the drain).',
  maint:
    "usage: xdirector maint SERVICE/BACKEND | maint BACKEND\nMaintenance (HAProxy's MAINT): no new flows AND established flows end (XDP re-hashes them to another\nbackend, which resets them; IPVS removes the destination). Health checks do not bring it back. Kept\nacross restarts; status shows state maint.",
  unmaint:
    'usage: xdirector unmaint SERVICE/BACKEND | unmaint BACKEND\nEnd maintenance (the same TARGET as the maint); health decides again.',
  weight:
    "usage: xdirector weight SERVICE/BACKEND N | weight BACKEND N | weight TARGET --reset\nSet the backend's weight at run time (an integer from 0 to 65535, the config's rule): the XDP Maglev ring\nis rebuilt or the IPVS destination weight edited, without a reload. It overrides the config's weight,\nis kept across reload and restart, and status shows it, until --reset returns to the config's.",
  dataplane: 'usage: xdirector dataplane xdp|ipvs\nSwitch the live dataplane without moving a flow.',
  reload: 'usage: xdirector reload\nRe-read the config file (same as SIGHUP).',
  metrics: 'usage: xdirector metrics\nPrometheus text format (also at /metrics when admin.http is set).',
  stop: 'usage: xdirector stop [--detach] [-c FILE]\nStop the daemon; --detach also removes the XDP program and pinned maps (works without a daemon given -c FILE).',
  resign:
    "usage: xdirector resign -c FILE\nAfter the daemon has stopped, however it stopped (the unit's ExecStopPost): remove the VRRP VIPs of the\nconfig that are still on their interfaces, so that only the other director answers for them. The XDP\nprogram and pins stay for the next start to adopt. Run it only while the daemon is not running.",
  bench: 'usage: xdirector bench [--quick] [--out DIR] [--only LIST]\nBenchmarks (see README).',
};

const CLIENT_OPTIONS = 'options for client commands: -c FILE, --socket PATH, --instance NAME';

type Options = Record<string, { type: 'boolean' | 'string'; short?: string }>;

/** Each command's own options (beside --help, -c, --socket and --instance, which every command takes). */
const COMMAND_OPTIONS: Record<string, Options> = {
  run: { 'log-level': { type: 'string' } },
  'check-config': {},
  status: { json: { type: 'boolean' }, exact: { type: 'boolean' }, rate: { type: 'boolean' } },
  drain: { director: { type: 'boolean' } },
  undrain: { director: { type: 'boolean' } },
  maint: {},
  unmaint: {},
  weight: { reset: { type: 'boolean' } },
  dataplane: {},
  reload: {},
  metrics: {},
  stop: { detach: { type: 'boolean' } },
  resign: {},
};

/** XD_ERR_USAGE "COMMAND: problem" followed by the command's usage. */
function usage(cmd: string, problem: string): XdError {
  return new XdError('XD_ERR_USAGE', `${cmd}: ${problem}\n${COMMAND_HELP[cmd]}`);
}

/** Exactly `n` positionals (named by `what`, e.g. "TARGET N"), or a usage error. */
function positionalsOf(cmd: string, positionals: string[], n: number, what: string): string[] {
  if (positionals.length < n) throw usage(cmd, `needs ${what}`);
  if (positionals.length > n)
    throw usage(cmd, `unexpected argument "${positionals[n]}" (takes ${what || 'no argument'})`);
  return positionals;
}

/** The weight argument: an integer (its range is the daemon's to check, with the config's rule). */
function weightArg(text: string): number {
  if (!/^-?\d+$/.test(text)) throw usage('weight', `the weight must be an integer from 0 to 65535, got "${text}"`);
  return Number(text);
}

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  // Asked for: the usage on standard output. Not given a command: a usage error like any other (stderr, exit 2).
  if (cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!cmd) throw new XdError('XD_ERR_USAGE', `a command is needed\n${USAGE}`);
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`xdirector ${xdirectorVersion()}\n`);
    return 0;
  }
  const rest = argv.slice(1);
  if (cmd === 'import-keepalived') {
    const { importKeepalivedMain } = await import('../keepalived/cli');
    return importKeepalivedMain(argv.slice(1));
  }
  if (cmd === 'realserver') {
    const { realserverMain } = await import('../realserver/cli');
    return realserverMain(argv.slice(1));
  }
  if (cmd === 'check') {
    // Its own parsing and exit codes (0-3, the monitoring-plugin contract): src/cli/check.ts.
    const { checkMain } = await import('./check');
    return checkMain(rest, socketFor);
  }
  if (cmd === 'bench') {
    // Its options are the tooling's own (scripts/bench); only --help is read here.
    if (
      !parseSubcommandArgs(cmd, COMMAND_HELP.bench!, {
        args: rest,
        strict: false,
        allowPositionals: true,
        options: { help: { type: 'boolean', short: 'h' } },
      })
    )
      return 0;
    return runBench(rest);
  }
  if (!COMMAND_HELP[cmd]) {
    // Loaded here, not at the top: the config module (zod, yaml) is most of the CLI's start-up,
    // and only the commands that read a config file need it.
    const { suggest } = await import('../config');
    const near = suggest(cmd, [...Object.keys(COMMAND_HELP), 'import-keepalived', 'realserver', 'help', 'version']);
    throw new XdError('XD_ERR_USAGE', `unknown command "${cmd}"${near ? `; did you mean "${near}"?` : ''}\n${USAGE}`);
  }
  // `weight db1 -1` is a weight the daemon refuses with the range, not an unknown option "-1".
  const negative = (a: string) => /^-\d+$/.test(a);
  const args =
    cmd === 'weight' && rest.some(negative)
      ? [...rest.filter((a) => !negative(a)), '--', ...rest.filter(negative)]
      : rest;
  const parsed = parseSubcommandArgs(cmd, `${COMMAND_HELP[cmd]}\n\n${CLIENT_OPTIONS}`, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      socket: { type: 'string' },
      instance: { type: 'string' },
      ...COMMAND_OPTIONS[cmd],
    },
  });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const v = values as {
    config?: string;
    socket?: string;
    instance?: string;
    json?: boolean;
    exact?: boolean;
    rate?: boolean;
    director?: boolean;
    reset?: boolean;
    detach?: boolean;
    'log-level'?: string;
  };
  switch (cmd) {
    case 'run': {
      positionalsOf(cmd, positionals, 0, '');
      if (!v.config) throw new XdError('XD_ERR_USAGE', 'run needs -c FILE');
      const missing = missingRunCapabilities();
      if (missing.length)
        throw new XdError(
          'XD_ERR_PERMISSION',
          `run: this process lacks ${missing.join(' and ')} (XDP, BPF maps, addresses and IPVS need them): ${RUN_AS_ROOT}`,
        );
      const { runDaemon } = await import('../daemon/run');
      return runDaemon(v.config, { logLevel: v['log-level'] });
    }
    case 'check-config': {
      positionalsOf(cmd, positionals, 0, '');
      if (!v.config) throw new XdError('XD_ERR_USAGE', 'check-config needs -c FILE');
      const { loadConfig } = await import('../config');
      try {
        const cfg = loadConfig(v.config);
        process.stdout.write(`${v.config}: OK (instance ${cfg.instance}, ${cfg.services.length} service(s))\n`);
        for (const s of cfg.services) {
          process.stdout.write(
            `  ${s.name}: ${s.protocol.toUpperCase()} ${hostPort(s.vip, s.port)} ${s.scheduler}, ${s.backends.length} backend(s)\n`,
          );
        }
        for (const w of cfg.warnings) process.stderr.write(`${v.config}: warning: ${w}\n`);
        return 0;
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        return 1;
      }
    }
    case 'status': {
      positionalsOf(cmd, positionals, 0, '');
      const st = await apiCall<DaemonStatus>(await socketFor(v), 'GET', '/status');
      if (v.rate) {
        if (v.json) process.stdout.write(statusJson(st, { rate: true }));
        else process.stdout.write(formatRates(st, { exact: !!v.exact }));
        return 0;
      }
      process.stdout.write(v.json ? statusJson(st, { rate: false }) : formatStatus(st, { exact: !!v.exact }));
      return 0;
    }
    case 'drain':
    case 'undrain': {
      if (v.director) {
        if (positionals.length)
          throw usage(
            cmd,
            `--director takes no TARGET (it ${cmd === 'drain' ? 'withdraws' : 're-announces'} the whole director)`,
          );
        const r = await apiCall<ApiMessage>(await socketFor(v), 'POST', '/drain-director', { on: cmd === 'drain' });
        process.stdout.write(`${r.message}\n`);
        return 0;
      }
      const [target] = positionalsOf(
        cmd,
        positionals,
        1,
        'a TARGET: BACKEND (name or address:port, every service) or SERVICE/BACKEND',
      );
      const r = await apiCall<ApiMessage>(await socketFor(v), 'POST', `/${cmd}`, { backend: target });
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'maint':
    case 'unmaint': {
      const [target] = positionalsOf(
        cmd,
        positionals,
        1,
        'a TARGET: BACKEND (name or address:port, every service) or SERVICE/BACKEND',
      );
      const r = await apiCall<ApiMessage>(await socketFor(v), 'POST', `/${cmd}`, { backend: target });
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'weight': {
      let body: { backend: string; weight: number | null };
      if (v.reset) {
        const [target] = positionalsOf(cmd, positionals, 1, 'a TARGET (with --reset, no weight)');
        body = { backend: target!, weight: null };
      } else {
        const [target, n] = positionalsOf(cmd, positionals, 2, 'a TARGET and a weight N (or TARGET --reset)');
        body = { backend: target!, weight: weightArg(n!) };
      }
      const r = await apiCall<ApiMessage>(await socketFor(v), 'POST', '/weight', body);
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'dataplane': {
      const [kind] = positionalsOf(cmd, positionals, 1, 'xdp or ipvs');
      if (kind !== 'xdp' && kind !== 'ipvs') throw usage(cmd, `needs xdp or ipvs, got "${kind}"`);
      // A switch programs the other dataplane in full, moves traffic, then empties the old one: on a
      // slow or loaded host (or an emulated one) that can outlast the usual 30 s answer timeout.
      const r = await apiCall<ApiMessage>(
        await socketFor(v),
        'POST',
        '/dataplane',
        { kind },
        DATAPLANE_SWITCH_TIMEOUT_MS,
      );
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'reload': {
      positionalsOf(cmd, positionals, 0, '');
      const r = await apiCall<ApiMessage>(await socketFor(v), 'POST', '/reload');
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'metrics': {
      positionalsOf(cmd, positionals, 0, '');
      const r = await apiRequest(await socketFor(v), 'GET', '/metrics');
      process.stdout.write(r.text);
      return r.status === 200 ? 0 : 1;
    }
    case 'stop': {
      positionalsOf(cmd, positionals, 0, '');
      let sock: string | undefined;
      try {
        sock = await socketFor(v);
      } catch {
        sock = undefined;
      }
      if (sock && fs.existsSync(sock)) {
        try {
          const r = await apiCall<ApiMessage>(sock, 'POST', '/stop', { detach: !!v.detach });
          process.stdout.write(`${r.message}\n`);
          return 0;
        } catch (err) {
          if (!(err instanceof XdError) || err.code !== 'XD_ERR_API' || !v.config) throw err;
        }
      }
      if (!v.detach)
        throw new XdError(
          'XD_ERR_USAGE',
          'no running daemon to stop (use stop --detach -c FILE to remove the program and pins)',
        );
      if (!v.config) throw new XdError('XD_ERR_USAGE', 'stop --detach without a running daemon needs -c FILE');
      const { detachInstance } = await import('../daemon/run');
      process.stdout.write(`${await detachInstance(v.config)}\n`);
      return 0;
    }
    case 'resign': {
      positionalsOf(cmd, positionals, 0, '');
      if (!v.config) throw usage(cmd, "needs -c FILE (the VIPs to remove are the config's)");
      const { loadConfig } = await import('../config');
      const cfg = loadConfig(v.config);
      // A running daemon owns its VIPs: taking them away under it would split the VRRP pair's view.
      const sock = cfg.admin.socket;
      if (fs.existsSync(sock)) {
        const alive = await apiRequest(sock, 'GET', '/status').then(
          () => true,
          () => false,
        );
        if (alive)
          throw new XdError(
            'XD_ERR_USAGE',
            `resign: the daemon of ${cfg.instance} is running (it answers on ${sock}); stop it first (xdirector stop), its VIPs go with it`,
          );
      }
      const { resignVips } = await import('../vrrp/resign');
      for (const line of await resignVips(cfg.vrrp)) process.stdout.write(`${line}\n`);
      return 0;
    }
    default:
      throw new XdError('XD_ERR_USAGE', `unknown command "${cmd}"\n${USAGE}`);
  }
}
