// `xdirector check`: a monitoring plugin (Nagios, Icinga, Zabbix, Sensu: the monitoring-plugins
// guidelines). One status line on stdout, perfdata after "|", exit 0 OK, 1 WARNING, 2 CRITICAL,
// 3 UNKNOWN. The line is built by checkStatus() (pure: status in, verdict out); checkMain() asks
// the daemon and turns every failure into one of those four answers (never a usage exit 2, which
// a monitoring system would read as CRITICAL).
import type { DaemonStatus } from '../daemon/status';
import { apiCall } from '../api/client';
import { parseSubcommandArgs } from '../subcommand';

export const CHECK_HELP = `usage: xdirector check [-c FILE | --socket PATH | --instance NAME] [-w N] [--critical N] [-t SECONDS]
A monitoring-plugin check of the running daemon (Nagios, Icinga, Zabbix, Sensu): one status line,
perfdata (services up, backends up/total, alerts), exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
CRITICAL: the daemon does not answer, a service has no active backend, an alert is raised (split
  brain, no writer, empty readers, the director cannot serve), the dataplane differs from the
  desired state, a VRRP instance is in FAULT, a BGP session is down;
WARNING: backends down (health checks), the last apply or reload failed, driver TX errors, flood
  pressure, a VRRP tracker failing. Drained and maintenance backends are reported, not warned about.
  -w, --warning N    WARNING from N backends down (default 1)
  --critical N       CRITICAL from N backends down (default: only an empty service)
  -t, --timeout S    seconds to wait for the daemon (default 10)`;

export const CHECK_EXIT = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
export type CheckState = keyof typeof CHECK_EXIT;

export interface CheckThresholds {
  /** Backends down from which the check warns. */
  warningDown: number;
  /** Backends down from which the check is critical (Infinity: only an empty service is). */
  criticalDown: number;
}

const worse = (a: CheckState, b: CheckState): CheckState => (CHECK_EXIT[b] > CHECK_EXIT[a] ? b : a);

/** The plugin's verdict on a status: its state, the status line (with perfdata) and the exit code. */
export function checkStatus(st: DaemonStatus, t: CheckThresholds): { state: CheckState; line: string; code: number } {
  let state: CheckState = 'OK';
  const problems: string[] = [];
  const flag = (s: CheckState, text: string) => {
    state = worse(state, s);
    problems.push(text);
  };
  const svcs = st.dataplane.services;
  const bes = svcs.flatMap((s) => s.backends.map((b) => ({ s, b })));
  const down = bes.filter(({ b }) => b.state === 'down');
  const up = bes.filter(({ b }) => b.state === 'active');
  const servicesUp = svcs.filter((s) => s.backends.some((b) => b.state === 'active'));
  const alerts = st.alerts.length;
  for (const s of svcs)
    if (!s.backends.some((b) => b.state === 'active')) flag('CRITICAL', `service ${s.name} has no active backend`);
  if (down.length) {
    const names = down.map(({ s, b }) => `${s.name}/${b.name}`).join(', ');
    flag(
      down.length >= t.criticalDown ? 'CRITICAL' : down.length >= t.warningDown ? 'WARNING' : 'OK',
      `${down.length} backend(s) down: ${names}`,
    );
  }
  for (const a of st.alerts) flag('CRITICAL', a);
  if (st.apply.diverged) flag('CRITICAL', 'the dataplane differs from the desired state');
  else if (st.lastApplyError) flag('WARNING', `last apply failed: ${st.lastApplyError}`);
  for (const v of st.vrrp) {
    if (v.state === 'FAULT') flag('CRITICAL', `VRRP ${v.name} in FAULT`);
    for (const tr of v.trackers) if (!tr.ok) flag('WARNING', `VRRP ${v.name} tracker ${tr.name} failing`);
  }
  for (const n of st.bgp?.neighbours ?? []) if (!n.established) flag('CRITICAL', `BGP session ${n.name} ${n.state}`);
  const xd = st.dataplane.kind === 'xdp' ? st.dataplane.detail : undefined;
  if (xd?.txAlert) flag('WARNING', xd.txAlert);
  if (xd?.floodAlert) flag('WARNING', xd.floodAlert);
  if (st.reloads.lastOk === false) flag('WARNING', `last reload failed: ${st.reloads.lastError ?? 'unknown error'}`);
  const summary = [`${servicesUp.length}/${svcs.length} services up`, `${up.length}/${bes.length} backends active`];
  const drained = bes.filter(({ b }) => b.state === 'draining').length;
  const maint = bes.filter(({ b }) => b.state === 'maint').length;
  if (drained) summary.push(`${drained} draining`);
  if (maint) summary.push(`${maint} in maint`);
  for (const v of st.vrrp) summary.push(`VRRP ${v.name} ${v.state}`);
  const crit = Number.isFinite(t.criticalDown) ? String(t.criticalDown) : '';
  // 'label'=value[UOM];[warn];[crit];[min];[max] (monitoring-plugins guidelines).
  const perf = [
    `services_up=${servicesUp.length};;;0;${svcs.length}`,
    `backends_up=${up.length};;;0;${bes.length}`,
    `backends_down=${down.length};${t.warningDown};${crit};0;${bes.length}`,
    `alerts=${alerts};;1;0;`,
  ].join(' ');
  // One line: no newline from a message may split it.
  const text = [...problems, ...summary].join('; ').replace(/[\r\n|]+/g, ' ');
  return { state, line: `XDIRECTOR ${state} - ${text} | ${perf}`, code: CHECK_EXIT[state] };
}

function count(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text)) throw new Error(`${name} must be a whole number, got "${text}"`);
  return Number(text);
}

/** `socketFor`: the CLI's choice of admin socket from -c/--socket/--instance. Returns the exit code. */
export async function checkMain(
  args: string[],
  socketFor: (v: { config?: string; socket?: string; instance?: string }) => Promise<string>,
): Promise<number> {
  const say = (state: CheckState, text: string) => {
    process.stdout.write(`XDIRECTOR ${state} - ${text.replace(/[\r\n|]+/g, ' ')}\n`);
    return CHECK_EXIT[state];
  };
  let v: { config?: string; socket?: string; instance?: string; warning?: string; critical?: string; timeout?: string };
  let t: CheckThresholds;
  let timeoutMs: number;
  try {
    const parsed = parseSubcommandArgs('check', CHECK_HELP, {
      args,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        config: { type: 'string', short: 'c' },
        socket: { type: 'string' },
        instance: { type: 'string' },
        warning: { type: 'string', short: 'w' },
        critical: { type: 'string' },
        timeout: { type: 'string', short: 't' },
      },
    });
    if (!parsed) return CHECK_EXIT.OK;
    v = parsed.values;
    t = {
      warningDown: count('--warning', v.warning, 1),
      criticalDown: v.critical === undefined ? Infinity : count('--critical', v.critical, 0),
    };
    timeoutMs = count('--timeout', v.timeout, 10) * 1000;
    if (timeoutMs === 0) throw new Error('--timeout must be at least 1');
  } catch (err) {
    // Bad arguments: UNKNOWN (3), the plugin's answer for "could not check".
    return say('UNKNOWN', `${(err as Error).message.split('\n')[0]} (xdirector check --help)`);
  }
  let sock: string;
  try {
    sock = await socketFor(v);
  } catch (err) {
    return say('UNKNOWN', (err as Error).message.split('\n')[0]!);
  }
  let st: DaemonStatus;
  try {
    st = await apiCall<DaemonStatus>(sock, 'GET', '/status', undefined, timeoutMs);
  } catch (err) {
    // The daemon is the service checked: not answering is CRITICAL, not UNKNOWN.
    return say('CRITICAL', `xdirector does not answer on ${sock}: ${(err as Error).message}`);
  }
  const r = checkStatus(st, t);
  process.stdout.write(r.line + '\n');
  return r.code;
}
