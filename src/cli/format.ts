// Human-readable `xdirector status`, laid out like `ipvsadm -Ln --stats`.
import { xdirectorVersion } from '../version';
import type { DaemonStatus } from '../daemon/status';
import { hostPort } from '../net/inet';
import type { BackendHealth } from '../health';

function pad(s: string | number | undefined, n: number, right = false): string {
  const t = String(s ?? '-');
  return right ? t.padStart(n) : t.padEnd(n);
}

/** --exact: print counters in full, like ipvsadm --exact. */
let exact = false;

function human(n: number): string {
  if (exact || n < 10000) return String(n);
  const u = ['K', 'M', 'G', 'T'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)}${u[i]}`;
}

export function formatStatus(st: DaemonStatus, opts: { exact?: boolean } = {}): string {
  exact = !!opts.exact;
  const out: string[] = [];
  const dp = st.dataplane;
  // Plain values on the first line; the structured ones (and the alert) get lines of their own.
  const detail = Object.entries(dp.detail)
    .filter(([k, v]) => typeof v !== 'object' && k !== 'txAlert' && k !== 'floodAlert')
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
  out.push(`xdirector ${st.instance} (pid ${st.pid}), dataplane ${dp.kind}${detail ? ` (${detail})` : ''}`);
  const healthByKey = new Map<string, BackendHealth>((st.health?.backends ?? []).map((b) => [b.key, b]));
  out.push(
    `${pad('Prot LocalAddress:Port', 30)} ${pad('Scheduler', 9)} ${pad('Forward', 16)} ${pad('NewFlows', 9, true)} ${pad('Packets', 9, true)} ${pad('Bytes', 9, true)} ${pad('NoBackend', 9, true)}`,
  );
  out.push(
    `  ${pad('-> RemoteAddress:Port', 26)} ${pad('MAC', 17)} ${pad('Weight', 6, true)} ${pad('State', 8)} ${pad('Health', 6)} ${pad('Role', 7)} ${pad('Lag', 5, true)} ${pad('ActiveConn', 10, true)} ${pad('InActConn', 9, true)} ${pad('NewFlows', 9, true)} ${pad('Packets', 9, true)} ${pad('Bytes', 9, true)}`,
  );
  for (const s of dp.services) {
    out.push(
      `${pad(`${s.proto.toUpperCase()}  ${hostPort(s.vip, s.port)}`, 30)} ${pad(s.scheduler, 9)} ${pad(s.forwarding ?? 'dr', 16)} ${pad(human(s.newFlows), 9, true)} ${pad(human(s.packets), 9, true)} ${pad(human(s.bytes), 9, true)} ${pad(human(s.noBackend), 9, true)}   ${s.name}`,
    );
    for (const b of s.backends) {
      const h = healthByKey.get(b.key);
      const health = h ? (h.up ? 'up' : 'down') : '-';
      const lag = h && h.lagSeconds !== null ? `${h.lagSeconds}s` : '-';
      out.push(
        `  -> ${pad(hostPort(b.address, b.port), 23)} ${pad(b.mac ?? '-', 17)} ${pad(b.weight, 6, true)} ${pad(b.state, 8)} ${pad(health, 6)} ${pad(h?.role ?? '-', 7)} ${pad(lag, 5, true)} ${pad(b.activeFlows, 10, true)} ${pad(b.inactiveFlows, 9, true)} ${pad(human(b.newFlows), 9, true)} ${pad(human(b.packets), 9, true)} ${pad(human(b.bytes), 9, true)}${b.name && b.name !== b.key ? `   ${b.name}` : ''}`,
      );
      if (h?.lastError) out.push(`       last error: ${h.lastError}`);
    }
  }
  for (const u of st.unresolved) out.push(`unresolved: ${u.service} ${u.backend}: ${u.error}`);
  if (st.drained.length) out.push(`drained: ${st.drained.join(', ')}`);
  if (st.maint.length)
    out.push(`maint: ${st.maint.join(', ')} (no new flows, established flows end; unmaint TARGET ends it)`);
  for (const w of st.weights) {
    const cfg = Object.entries(w.config)
      .map(([svc, cw]) => `${svc} ${cw}`)
      .join(', ');
    out.push(
      `runtime weight ${w.target} ${w.weight}: overrides the config's (${cfg || 'no such backend in the config now'}); kept across reload until weight ${w.target} --reset`,
    );
  }
  for (const a of st.health?.alerts ?? []) out.push(`ALERT: ${a.message}`);
  if (dp.kind === 'xdp') {
    if (dp.detail.txAlert) out.push(`ALERT: ${dp.detail.txAlert}`);
    if (dp.detail.floodAlert) out.push(`ALERT: ${dp.detail.floodAlert}`);
    const drv = dp.detail.driverTxErrors;
    if (drv && 'driver' in drv)
      out.push(`driver ${drv.driver}: xdp tx errors ${drv.txErrors}, xdp xmit errors ${drv.xmitErrors}`);
  }
  for (const v of st.vrrp) {
    out.push(
      `vrrp ${v.name}: ${v.state} vrid ${v.vrid} priority ${v.effectivePriority}${v.vips.length ? ` vips ${v.vips.join(' ')}` : ''}`,
    );
  }
  if (st.bgp) {
    const b = st.bgp;
    out.push(
      `bgp: bird ${b.daemon.running ? `pid ${b.daemon.pid}` : b.daemon.hung ? `pid ${b.daemon.pid} HUNG (no answer on its control socket, ${b.daemon.failedSyncs} syncs failed): being restarted` : `not running${b.daemon.lastExit ? ` (${b.daemon.lastExit})` : ''}`}${b.daemon.restarts ? `, ${b.daemon.restarts} restart(s)` : ''}${b.directorDrained ? ', DIRECTOR DRAINED' : ''}`,
    );
    for (const n of b.neighbours)
      out.push(
        `  neighbour ${n.name} ${n.address} AS ${n.as}: ${n.state}${n.since ? ` since ${n.since}` : ''}${n.bfd ? ', bfd' : ''}, ${n.exported} prefix(es) announced${n.lastError ? `, last error: ${n.lastError}` : ''}`,
      );
    out.push(`  announced: ${b.announced.join(' ') || 'none'}`);
    for (const [vip, why] of Object.entries(b.withdrawnBecause)) out.push(`  withdrawn ${vip}: ${why}`);
  }
  const r = Object.entries(dp.reasons ?? {})
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${human(v)}`);
  if (r.length) out.push(`verdicts: ${r.join(' ')}`);
  if (dp.flood)
    out.push(
      `flood guard: embryonic=${human(dp.flood.embryonicCreated)} handshakes=${human(dp.flood.handshakes)} takeovers=${human(dp.flood.takeoversCreated)} rate_limited=${human(dp.flood.rateLimited)}`,
    );
  return out.join('\n') + '\n';
}

/** A rate as ipvsadm prints it: whole numbers, K/M/G above 10000 unless --exact; one decimal below 10 so a slow trickle is not 0. */
function rate(n: number): string {
  if (n < 10) return n === 0 ? '0' : n.toFixed(1);
  return human(Math.round(n));
}

/** `xdirector status --rate`, laid out like `ipvsadm -Ln --rate` (no OutPPS/OutBPS: replies bypass the director). */
export function formatRates(st: DaemonStatus, opts: { exact?: boolean } = {}): string {
  exact = !!opts.exact;
  const r = st.rates;
  if (!r)
    return `xdirector ${st.instance}: no rates yet (the daemon samples its counters every 2 s and needs two samples)\n`;
  const out: string[] = [`xdirector ${st.instance}, rates over ${r.intervalSeconds.toFixed(1)} s to ${r.at}`];
  out.push(
    `${pad('Prot LocalAddress:Port', 30)} ${pad('CPS', 9, true)} ${pad('InPPS', 9, true)} ${pad('InBPS', 9, true)}`,
  );
  out.push(`  ${pad('-> RemoteAddress:Port', 28)}`);
  const byName = new Map(r.services.map((s) => [s.name, s]));
  for (const s of st.dataplane.services) {
    const sr = byName.get(s.name);
    if (!sr) continue;
    out.push(
      `${pad(`${s.proto.toUpperCase()}  ${hostPort(s.vip, s.port)}`, 30)} ${pad(rate(sr.cps), 9, true)} ${pad(rate(sr.inPps), 9, true)} ${pad(rate(sr.inBps), 9, true)}   ${s.name}`,
    );
    const brs = new Map(sr.backends.map((b) => [b.key, b]));
    for (const b of s.backends) {
      const br = brs.get(b.key);
      if (!br) continue;
      out.push(
        `  -> ${pad(hostPort(b.address, b.port), 25)} ${pad(rate(br.cps), 9, true)} ${pad(rate(br.inPps), 9, true)} ${pad(rate(br.inBps), 9, true)}${b.name && b.name !== b.key ? `   ${b.name}` : ''}`,
      );
    }
  }
  return out.join('\n') + '\n';
}

/**
 * `status --json` (with its version) and `status --rate --json`: before the daemon has two
 * counter samples (its first 2 to 4 s) the rates are null, printed as a "warming up" object
 * rather than a bare null a script would have to guess about.
 */
export function statusJson(st: DaemonStatus, o: { rate: boolean }): string {
  if (o.rate) {
    const body = st.rates ?? {
      state: 'warming up',
      message: 'no rates yet: the daemon samples its counters every 2 s and needs two samples',
    };
    return JSON.stringify(body, null, 2) + '\n';
  }
  // The daemon's version; a daemon older than the field sends none: the installed one, which it runs after a restart.
  return JSON.stringify({ ...st, version: st.version ?? xdirectorVersion() }, null, 2) + '\n';
}
