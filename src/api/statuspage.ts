// The status page (HAProxy-stats style): one HTML document from a status snapshot, no script,
// refreshed by the browser every few seconds. Pure: status in, HTML out. Rates are the daemon's
// (its estimator's last window, like `ipvsadm --rate`), read from the status by ratesOf().
import type { DaemonStatus } from '../daemon/status';
import type { BackendHealth } from '../health';
import { hostPort } from '../net/inet';
import { targetValue } from '../desired';

export interface Rates {
  /** Per service name, then per backend key ("" = the service itself): per-second rates. */
  get(service: string, backend: string): { pps: number; bps: number; cps: number } | undefined;
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function human(n: unknown): string {
  const v = typeof n === 'number' ? n : Number(n);
  if (!Number.isFinite(v)) return '-';
  if (v >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}K`;
  return String(Math.round(v * 10) / 10);
}

/** A duration as the page shows it: "45s", "12m05s", "3h02m", "4d03h". */
export function since(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  const p2 = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${p2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${p2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${p2(Math.floor(s / 3600) % 24)}h`;
}

export function renderStatusPage(
  st: DaemonStatus,
  rates: Rates | undefined,
  o: { refreshSeconds?: number; readOnly: boolean; now?: Date },
): string {
  const refresh = o.refreshSeconds ?? 5;
  const dp = st.dataplane;
  const detail = Object.entries(dp.detail)
    .filter(([, v]) => typeof v !== 'object')
    .map(([k, v]) => `${esc(k)} ${esc(v)}`)
    .join(', ');
  const health = new Map<string, BackendHealth>((st.health?.backends ?? []).map((b) => [b.key, b]));
  const nowMs = (o.now ?? new Date()).getTime();
  const stateSince = new Map<string, string>(st.backendStates.map((t) => [`${t.service}\n${t.backend}`, t.since]));
  const weights = new Map(st.weights.map((w) => [w.target, w]));
  const rows: string[] = [];
  for (const s of dp.services) {
    const r = rates?.get(s.name, '');
    rows.push(
      `<tr class="service" data-service="${esc(s.name)}"><th colspan="2">${esc(s.name)}</th><td>${esc(s.proto?.toUpperCase())} ${esc(hostPort(String(s.vip), s.port))}</td><td class="wide">${esc(s.scheduler)}</td><td colspan="8"></td><td></td>` +
        `<td class="num wide">${human(s.newFlows)}</td><td class="num wide">${human(s.packets)}</td><td class="num wide">${human(s.bytes)}</td><td class="num rate">${r ? human(r.cps) : '-'}</td><td class="num rate">${r ? human(r.pps) : '-'}</td><td class="num rate">${r ? human(r.bps) : '-'}</td></tr>`,
    );
    for (const b of s.backends) {
      const h = health.get(b.key);
      const hs = h ? (h.up ? 'up' : 'down') : 'unchecked';
      const br = rates?.get(s.name, b.key);
      const lag = h && h.lagSeconds !== null && h.lagSeconds !== undefined ? `${h.lagSeconds}s` : '-';
      const entered = stateSince.get(`${s.name}\n${b.key}`);
      const inState = entered ? since(nowMs - Date.parse(entered)) : '-';
      const check = h?.lastCheckMs !== undefined ? `${Math.round(h.lastCheckMs)} ms` : '-';
      const rw = targetValue(weights, s, b);
      // A run-time weight (xdirector weight) overrides the config's until --reset: marked, with the config's in the title.
      const weight = rw
        ? `<span class="rtw" title="run-time weight ${esc(rw.weight)} (xdirector weight ${esc(rw.target)}), config weight ${esc(rw.config[s.name] ?? '-')}">${esc(b.weight)}*</span>`
        : esc(b.weight);
      rows.push(
        `<tr class="backend st-${esc(b.state)} h-${hs}" data-service="${esc(s.name)}" data-backend="${esc(b.name)}" data-state="${esc(b.state)}" data-health="${hs}">` +
          `<td></td><td>${esc(b.name)}</td><td>${esc(hostPort(String(b.address), b.port))}</td><td class="wide">${esc(b.mac ?? '-')}</td><td class="num weight">${weight}</td><td class="state">${esc(b.state)}</td><td class="num since">${inState}</td><td class="health">${hs}</td><td class="num check">${check}</td><td>${esc(h?.role ?? '-')}</td><td class="num">${esc(lag)}</td><td class="num">${human(b.activeFlows)}</td><td class="num">${human(b.inactiveFlows)}</td>` +
          `<td class="num wide">${human(b.newFlows)}</td><td class="num wide">${human(b.packets)}</td><td class="num wide">${human(b.bytes)}</td><td class="num rate">${br ? human(br.cps) : '-'}</td><td class="num rate">${br ? human(br.pps) : '-'}</td><td class="num rate">${br ? human(br.bps) : '-'}</td></tr>`,
      );
      if (h?.lastError)
        rows.push(`<tr class="error"><td></td><td colspan="18">last error: ${esc(h.lastError)}</td></tr>`);
    }
  }
  const vrrp = st.vrrp
    .map(
      (v) =>
        `<tr class="vrrp" data-instance="${esc(v.name)}" data-state="${esc(v.state)}"><td>${esc(v.name)}</td><td>${esc(v.interface)}</td><td>${esc(v.vrid)}</td><td class="state">${esc(v.state)}</td><td class="num">${esc(v.priority)}</td><td class="num">${esc(v.effectivePriority)}</td><td class="num">${esc(v.counters.transitions)}</td></tr>`,
    )
    .join('');
  const list = (xs: string[]) =>
    xs.length ? xs.map((x) => `<li>${esc(x)}</li>`).join('') : '<li class="none">none</li>';
  const bgp = st.bgp ? `<h2>BGP</h2><pre class="bgp">${esc(JSON.stringify(st.bgp, null, 1))}</pre>` : '';
  const alerts = [...st.alerts, ...(st.health?.alerts ?? []).map((a) => a.message)].map((a) => `<li>${esc(a)}</li>`);
  const applyErr = st.lastApplyError ? `<li>last apply failed: ${esc(st.lastApplyError)}</li>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refresh}">
<title>xdirector ${esc(st.instance)}</title>
<style>
body{font:13px/1.35 system-ui,sans-serif;margin:1em;color:#222}h1{font-size:18px}h2{font-size:15px;margin-top:1.2em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}td.num{text-align:right}
span.rtw{font-weight:bold;color:#7a3e00;cursor:help}pre.bgp{white-space:pre-wrap;overflow-wrap:anywhere}ul.targets{margin:0;padding-left:1.2em}
/* 800 px (a laptop split screen, a phone turned): no horizontal scrolling. The MAC, the cumulative
   counters and the scheduler go (xdirector status has them), cells may wrap. */
@media (max-width:1100px){.wide{display:none}body{margin:.4em;font-size:12px}th,td{white-space:normal;padding:1px 3px}th{font-size:11px}table{width:100%}}
tr.service{background:#dde6f3}tr.backend.h-up{background:#e3f5e1}tr.backend.h-down{background:#f9d6d3}
tr.backend.st-drained,tr.backend.st-draining{background:#e8e3f3}tr.backend.st-maint{background:#c9c1dd}
tr.error td{color:#a00;font-size:12px}ul.alerts li{color:#a00;font-weight:bold}.meta{color:#666}
</style></head><body>
<h1>xdirector <span id="instance">${esc(st.instance)}</span></h1>
<p class="meta">xdirector <span id="version">${esc(st.version)}</span>, pid ${esc(st.pid)}, started ${esc(st.startedAt)}, dataplane <b id="dataplane">${esc(dp.kind)}</b>${detail ? ` (${detail})` : ''}; ${o.readOnly ? 'read-only' : 'changes need the token'}; page refreshes every ${refresh}s; ${esc((o.now ?? new Date()).toISOString())}</p>
<h2>Alerts</h2><ul class="alerts" id="alerts">${alerts.join('') + applyErr || '<li class="none" style="color:#080;font-weight:normal">none</li>'}</ul>
<h2>Services</h2>
<table id="services"><thead><tr><th colspan="2">Service / backend</th><th>Address</th><th class="wide">MAC / scheduler</th><th title="* run-time weight overriding the config's">Weight</th><th>State</th><th title="time in the current state">For</th><th>Health</th><th title="duration of the last health check">Check</th><th>Role</th><th>Lag</th><th title="like IPVS ActiveConn: the client has not closed the connection">Active</th><th title="like IPVS InActConn: closed by the client (FIN/RST) within 120 s, and UDP flows">Inactive</th><th class="wide">New flows</th><th class="wide">Packets</th><th class="wide">Bytes</th><th>Flows/s</th><th>Pkt/s</th><th>Bytes/s</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p class="meta">* run-time weight (<code>xdirector weight</code>) overriding the config's until <code>--reset</code>.</p>
<h2>Drained</h2><ul class="targets" id="drained">${list(st.drained)}</ul>
<h2>Maintenance</h2><ul class="targets" id="maint">${list(st.maint)}</ul>
<h2>VRRP</h2>
<table id="vrrp"><thead><tr><th>Instance</th><th>Interface</th><th>VRID</th><th>State</th><th>Priority</th><th>Effective</th><th>Transitions</th></tr></thead><tbody>${vrrp || '<tr><td colspan="7">no VRRP instance</td></tr>'}</tbody></table>
${bgp}
</body></html>
`;
}

/** The daemon's rates (its estimator, src/daemon/rates.ts: the same numbers as `status --rate` and the metrics); undefined until it has two samples. */
export function ratesOf(st: DaemonStatus): Rates | undefined {
  if (!st.rates) return undefined;
  const by = new Map<string, { pps: number; bps: number; cps: number }>();
  for (const s of st.rates.services) {
    by.set(`${s.name}\n`, { pps: s.inPps, bps: s.inBps, cps: s.cps });
    for (const b of s.backends) by.set(`${s.name}\n${b.key}`, { pps: b.inPps, bps: b.inBps, cps: b.cps });
  }
  return { get: (service, backend) => by.get(`${service}\n${backend}`) };
}
