// The status page (HAProxy-stats style): one HTML document from a status snapshot, no script,
// refreshed by the browser every few seconds. Pure: status in, HTML out. Rates are the daemon's
// (its estimator's last window, like `ipvsadm --rate`), read from the status by ratesOf().
import type { DaemonStatus } from '../daemon/status';
import type { BackendHealth } from '../health';
import { hostPort } from '../net/inet';

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

export function renderStatusPage(st: DaemonStatus, rates: Rates | undefined, o: { refreshSeconds?: number; readOnly: boolean; now?: Date }): string {
  const refresh = o.refreshSeconds ?? 5;
  const dp = st.dataplane;
  const detail = Object.entries(dp.detail).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `${esc(k)} ${esc(v)}`).join(', ');
  const health = new Map<string, BackendHealth>((st.health?.backends ?? []).map((b) => [b.key, b]));
  const rows: string[] = [];
  for (const s of dp.services) {
    const r = rates?.get(s.name, '');
    rows.push(`<tr class="service" data-service="${esc(s.name)}"><th colspan="2">${esc(s.name)}</th><td>${esc(s.proto?.toUpperCase())} ${esc(hostPort(String(s.vip), s.port))}</td><td>${esc(s.scheduler)}</td><td colspan="6"></td>`
      + `<td class="num">${human(s.newFlows)}</td><td class="num">${human(s.packets)}</td><td class="num">${human(s.bytes)}</td><td class="num rate">${r ? human(r.cps) : '-'}</td><td class="num rate">${r ? human(r.pps) : '-'}</td><td class="num rate">${r ? human(r.bps) : '-'}</td></tr>`);
    for (const b of s.backends) {
      const h = health.get(b.key);
      const hs = h ? (h.up ? 'up' : 'down') : 'unchecked';
      const br = rates?.get(s.name, b.key);
      const lag = h && h.lagSeconds !== null && h.lagSeconds !== undefined ? `${h.lagSeconds}s` : '-';
      rows.push(`<tr class="backend st-${esc(b.state)} h-${hs}" data-service="${esc(s.name)}" data-backend="${esc(b.name)}" data-state="${esc(b.state)}" data-health="${hs}">`
        + `<td></td><td>${esc(b.name)}</td><td>${esc(hostPort(String(b.address), b.port))}</td><td>${esc(b.mac ?? '-')}</td><td class="num">${esc(b.weight)}</td><td class="state">${esc(b.state)}</td><td class="health">${hs}</td><td>${esc(h?.role ?? '-')}</td><td class="num">${esc(lag)}</td><td class="num">${human(b.activeFlows)}</td>`
        + `<td class="num">${human(b.newFlows)}</td><td class="num">${human(b.packets)}</td><td class="num">${human(b.bytes)}</td><td class="num rate">${br ? human(br.cps) : '-'}</td><td class="num rate">${br ? human(br.pps) : '-'}</td><td class="num rate">${br ? human(br.bps) : '-'}</td></tr>`);
      if (h?.lastError) rows.push(`<tr class="error"><td></td><td colspan="15">last error: ${esc(h.lastError)}</td></tr>`);
    }
  }
  const vrrp = st.vrrp.map((v) => `<tr class="vrrp" data-instance="${esc(v.name)}" data-state="${esc(v.state)}"><td>${esc(v.name)}</td><td>${esc(v.interface)}</td><td>${esc(v.vrid)}</td><td class="state">${esc(v.state)}</td><td class="num">${esc(v.priority)}</td><td class="num">${esc(v.effectivePriority)}</td><td class="num">${esc(v.counters.transitions)}</td></tr>`).join('');
  const bgp = st.bgp ? `<h2>BGP</h2><pre class="bgp">${esc(JSON.stringify(st.bgp, null, 1))}</pre>` : '';
  const alerts = [...st.alerts, ...(st.health?.alerts ?? []).map((a) => a.message)].map((a) => `<li>${esc(a)}</li>`);
  const applyErr = st.lastApplyError ? `<li>last apply failed: ${esc(st.lastApplyError)}</li>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refresh}">
<title>xdirector ${esc(st.instance)}</title>
<style>
body{font:13px/1.35 system-ui,sans-serif;margin:1em;color:#222}h1{font-size:18px}h2{font-size:15px;margin-top:1.2em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}td.num{text-align:right}
tr.service{background:#dde6f3}tr.backend.h-up{background:#e3f5e1}tr.backend.h-down{background:#f9d6d3}
tr.backend.st-drained,tr.backend.st-draining{background:#e8e3f3}tr.backend.st-maint{background:#c9c1dd}
tr.error td{color:#a00;font-size:12px}ul.alerts li{color:#a00;font-weight:bold}.meta{color:#666}
</style></head><body>
<h1>xdirector <span id="instance">${esc(st.instance)}</span></h1>
<p class="meta">pid ${esc(st.pid)}, started ${esc(st.startedAt)}, dataplane <b id="dataplane">${esc(dp.kind)}</b>${detail ? ` (${detail})` : ''}; ${o.readOnly ? 'read-only' : 'changes need the token'}; page refreshes every ${refresh}s; ${esc((o.now ?? new Date()).toISOString())}</p>
<h2>Alerts</h2><ul class="alerts" id="alerts">${alerts.join('') + applyErr || '<li class="none" style="color:#080;font-weight:normal">none</li>'}</ul>
<h2>Services</h2>
<table id="services"><thead><tr><th colspan="2">Service / backend</th><th>Address</th><th>MAC / scheduler</th><th>Weight</th><th>State</th><th>Health</th><th>Role</th><th>Lag</th><th>Active flows</th><th>New flows</th><th>Packets</th><th>Bytes</th><th>Flows/s</th><th>Pkt/s</th><th>Bytes/s</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
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
