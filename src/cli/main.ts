// `xdirector` command line. Every command but `run` is a thin client of the
// admin API (or, for check-config and stop --detach, works without a daemon).
import { parseArgs } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { XdError } from '../errors';
import { apiCall, apiRequest } from '../api/client';
import type { ApiMessage } from '../api/server';
import type { DaemonStatus } from '../daemon/status';
import { formatStatus } from './format';

const USAGE = `usage: xdirector <command> [options]

commands:
  run -c FILE [--log-level L]     run the director in the foreground (SIGTERM/SIGINT stop it and keep
                                  the XDP program and maps for a hot restart; SIGHUP reloads the config)
  check-config -c FILE            validate a config file and print the services it describes
  status [--json]                 services, backends, health, flows and counters (like ipvsadm -Ln --stats)
  drain BACKEND | undrain BACKEND no new flows to BACKEND (name or address:port); established flows finish
  drain --director | undrain --director
                                  withdraw (re-announce) this director's BGP VIPs: the routers send new
                                  flows to the other directors; established flows finish
  dataplane xdp|ipvs              switch the live dataplane without moving a flow
  reload                          re-read the config file (same as SIGHUP)
  metrics                         Prometheus metrics
  stop [--detach]                 stop the daemon; --detach also removes the XDP program and pinned maps
                                  (works without a running daemon when given -c FILE)
  bench [--quick] [--out DIR]     benchmarks (see README)
  import-keepalived FILE [-o OUT] [--strict]
                                  translate a keepalived.conf into an xdirector config
  realserver setup|check|teardown --vip ADDR [--vip ADDR] | realserver grant
                                  prepare a real server for DR (VIPs on lo, ARP sysctls, monitor GRANT)

options for client commands: -c FILE (read instance and admin.socket from it), --socket PATH,
  --instance NAME (socket /run/xdirector/NAME.sock)`;

const DEFAULT_SOCKET_DIR = '/run/xdirector';

async function socketFor(v: { config?: string; socket?: string; instance?: string }): Promise<string> {
  if (v.socket) return v.socket;
  if (v.config) {
    const { loadConfig } = await import('../config');
    const cfg = loadConfig(v.config);
    return cfg.admin.socket;
  }
  if (v.instance) return `${DEFAULT_SOCKET_DIR}/${v.instance}.sock`;
  let socks: string[] = [];
  try {
    socks = fs.readdirSync(DEFAULT_SOCKET_DIR).filter((f) => f.endsWith('.sock'));
  } catch { /* none */ }
  if (socks.length === 1) return `${DEFAULT_SOCKET_DIR}/${socks[0]}`;
  throw new XdError('XD_ERR_USAGE', socks.length === 0
    ? `no running xdirector found in ${DEFAULT_SOCKET_DIR}: give -c FILE or --socket PATH`
    : `several xdirector instances run (${socks.join(', ')}): choose one with --instance NAME, -c FILE or --socket PATH`);
}

/**
 * `xdirector bench` runs the benchmark tooling of a source checkout (dist/scripts/bench, built
 * from scripts/bench). It is loaded only here, by path, so the product never imports it and the
 * published package (which ships no tooling) says what is missing instead of failing to load.
 */
async function runBench(args: string[]): Promise<number> {
  const entry = path.resolve(__dirname, '../../scripts/bench/cli.js');
  if (!fs.existsSync(entry)) {
    throw new XdError('XD_ERR_USAGE', `xdirector bench: the benchmark tooling is not installed (${entry} is missing); it ships with the source checkout: run \`npm run bench\` there`);
  }
  const bench = require(entry) as { main(argv: string[]): Promise<number | undefined> };
  return (await bench.main(args)) ?? 0;
}

/** One usage line and what it does, per command (`xdirector COMMAND --help`). */
const COMMAND_HELP: Record<string, string> = {
  run: 'usage: xdirector run -c FILE [--log-level L]\nRun the director in the foreground. SIGTERM/SIGINT stop it (the XDP program and maps stay for a hot\nrestart), SIGHUP reloads the config (a bad config is refused, the running one keeps serving).\nUnder systemd it sends READY=1 and WATCHDOG=1 (systemd/xdirector.service).',
  'check-config': 'usage: xdirector check-config -c FILE\nValidate a config file and print the services it describes; errors name the file, key path and problem (exit 1).',
  status: 'usage: xdirector status [--json] [--exact]\nServices, backends (MAC, weight, state, health, role, lag, flows, packets, bytes), alerts and VRRP state.\n--exact prints counters in full instead of 12.3K / 4.5M.',
  drain: 'usage: xdirector drain BACKEND | drain --director\nNo new flows to BACKEND (name or address:port, in every service); established flows finish.\n--director withdraws this director\'s BGP VIPs.',
  undrain: 'usage: xdirector undrain BACKEND | undrain --director\nUndo drain.',
  dataplane: 'usage: xdirector dataplane xdp|ipvs\nSwitch the live dataplane without moving a flow.',
  reload: 'usage: xdirector reload\nRe-read the config file (same as SIGHUP).',
  metrics: 'usage: xdirector metrics\nPrometheus text format (also at /metrics when admin.http is set).',
  stop: 'usage: xdirector stop [--detach] [-c FILE]\nStop the daemon; --detach also removes the XDP program and pinned maps (works without a daemon given -c FILE).',
  bench: 'usage: xdirector bench [--quick] [--out DIR] [--only LIST]\nBenchmarks (see README).',
};

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')) as { version: string };
    process.stdout.write(`xdirector ${pkg.version}\n`);
    return 0;
  }
  const rest = argv.slice(1);
  if ((rest.includes('--help') || rest.includes('-h')) && COMMAND_HELP[cmd]) {
    process.stdout.write(`${COMMAND_HELP[cmd]}\n\noptions for client commands: -c FILE, --socket PATH, --instance NAME\n`);
    return 0;
  }
  if (cmd === 'import-keepalived') {
    const { importKeepalivedMain } = await import('../keepalived/cli');
    return importKeepalivedMain(argv.slice(1));
  }
  if (cmd === 'realserver') {
    const { realserverMain } = await import('../realserver/cli');
    return realserverMain(argv.slice(1));
  }
  if (cmd === 'bench') return runBench(argv.slice(1));
  if (!COMMAND_HELP[cmd]) throw new XdError('XD_ERR_USAGE', `unknown command "${cmd}"\n${USAGE}`);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(1),
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        socket: { type: 'string' },
        instance: { type: 'string' },
        json: { type: 'boolean' },
        exact: { type: 'boolean' },
        detach: { type: 'boolean' },
        director: { type: 'boolean' },
        'log-level': { type: 'string' },
      },
    });
  } catch (err) {
    throw new XdError('XD_ERR_USAGE', `${cmd}: ${(err as Error).message}\n${COMMAND_HELP[cmd]}`);
  }
  const { values, positionals } = parsed;
  switch (cmd) {
    case 'run': {
      if (!values.config) throw new XdError('XD_ERR_USAGE', 'run needs -c FILE');
      const { runDaemon } = await import('../daemon/run');
      return runDaemon(values.config, { logLevel: values['log-level'] });
    }
    case 'check-config': {
      if (!values.config) throw new XdError('XD_ERR_USAGE', 'check-config needs -c FILE');
      const { loadConfig } = await import('../config');
      try {
        const cfg = loadConfig(values.config);
        process.stdout.write(`${values.config}: OK (instance ${cfg.instance}, ${cfg.services.length} service(s))\n`);
        for (const s of cfg.services) {
          process.stdout.write(`  ${s.name}: ${s.protocol.toUpperCase()} ${s.vip.includes(':') ? `[${s.vip}]` : s.vip}:${s.port} ${s.scheduler}, ${s.backends.length} backend(s)\n`);
        }
        for (const w of cfg.warnings) process.stderr.write(`${values.config}: warning: ${w}\n`);
        return 0;
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        return 1;
      }
    }
    case 'status': {
      const sock = await socketFor(values);
      const st = await apiCall<DaemonStatus>(sock, 'GET', '/status');
      process.stdout.write(values.json ? JSON.stringify(st, null, 2) + '\n' : formatStatus(st, { exact: !!values.exact }));
      return 0;
    }
    case 'drain':
    case 'undrain': {
      if (values.director) {
        if (positionals.length) throw new XdError('XD_ERR_USAGE', `${cmd} --director takes no BACKEND (it ${cmd === 'drain' ? 'withdraws' : 're-announces'} the whole director)`);
        const r = await apiCall<ApiMessage>(await socketFor(values), 'POST', '/drain-director', { on: cmd === 'drain' });
        process.stdout.write(`${r.message}\n`);
        return 0;
      }
      const backend = positionals[0];
      if (!backend) throw new XdError('XD_ERR_USAGE', `${cmd} needs a BACKEND (its name or address:port)`);
      const r = await apiCall<ApiMessage>(await socketFor(values), 'POST', `/${cmd}`, { backend });
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'dataplane': {
      const kind = positionals[0];
      if (kind !== 'xdp' && kind !== 'ipvs') throw new XdError('XD_ERR_USAGE', 'dataplane needs xdp or ipvs');
      const r = await apiCall<ApiMessage>(await socketFor(values), 'POST', '/dataplane', { kind });
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'reload': {
      const r = await apiCall<ApiMessage>(await socketFor(values), 'POST', '/reload');
      process.stdout.write(`${r.message}\n`);
      return 0;
    }
    case 'metrics': {
      const r = await apiRequest(await socketFor(values), 'GET', '/metrics');
      process.stdout.write(r.text);
      return r.status === 200 ? 0 : 1;
    }
    case 'stop': {
      let sock: string | undefined;
      try { sock = await socketFor(values); } catch { sock = undefined; }
      if (sock && fs.existsSync(sock)) {
        try {
          const r = await apiCall<ApiMessage>(sock, 'POST', '/stop', { detach: !!values.detach });
          process.stdout.write(`${r.message}\n`);
          return 0;
        } catch (err) {
          if (!(err instanceof XdError) || err.code !== 'XD_ERR_API' || !values.config) throw err;
        }
      }
      if (!values.detach) throw new XdError('XD_ERR_USAGE', 'no running daemon to stop (use stop --detach -c FILE to remove the program and pins)');
      if (!values.config) throw new XdError('XD_ERR_USAGE', 'stop --detach without a running daemon needs -c FILE');
      const { detachInstance } = await import('../daemon/run');
      process.stdout.write(`${await detachInstance(values.config)}\n`);
      return 0;
    }
    default:
      throw new XdError('XD_ERR_USAGE', `unknown command "${cmd}"\n${USAGE}`);
  }
}
