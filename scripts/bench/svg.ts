// A small SVG chart writer: horizontal bar charts with optional min–max whiskers,
// and line charts over categorical x values. Pure (returns strings); no fonts or
// scripts are embedded, so the files render the same in browsers and rsvg.

export interface Bar {
  label: string;
  value: number;
  /** Whisker from lo to hi (e.g. min and max over rounds). */
  range?: [number, number];
  /** Optional group name: bars of one group share a colour. */
  group?: string;
  /** Text after the bar; default: the value with the unit. */
  note?: string;
}

export interface BarChart {
  title: string;
  unit: string;
  bars: Bar[];
  /** Subtitle line under the title (machine, method). */
  subtitle?: string;
}

export interface LineSeries {
  name: string;
  /** One y per x category; null = no point (series skipped there). */
  values: (number | null)[];
}

export interface LineChart {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  x: string[];
  series: LineSeries[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"';

/** Escape text for SVG character data and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Format a number compactly for axis ticks and labels. */
export function fmt(x: number): string {
  if (x === 0) return '0';
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** "Nice" axis maximum and tick step for a data maximum (1, 2, 2.5, 5 × 10^k). */
export function niceAxis(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: 0.2 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

function header(width: number, height: number, title: string, subtitle?: string): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold" ${FONT}>${esc(title)}</text>`,
  ];
  if (subtitle)
    out.push(
      `<text x="${width / 2}" y="42" text-anchor="middle" font-size="11" fill="#555" ${FONT}>${esc(subtitle)}</text>`,
    );
  return out;
}

/** Horizontal bar chart: one row per bar, value axis at the bottom. */
export function barChartSvg(chart: BarChart): string {
  const labelW = Math.min(260, 20 + 7 * Math.max(4, ...chart.bars.map((b) => b.label.length)));
  const plotW = 460;
  const noteW = 150;
  const width = labelW + plotW + noteW;
  const rowH = 26;
  const top = chart.subtitle ? 58 : 44;
  const plotH = Math.max(1, chart.bars.length) * rowH;
  const height = top + plotH + 46;
  const dataMax = Math.max(0, ...chart.bars.map((b) => Math.max(b.value, b.range ? b.range[1] : 0)));
  const axis = niceAxis(dataMax);
  const xOf = (v: number): number => labelW + (Math.max(0, v) / axis.max) * plotW;
  const groups = [...new Set(chart.bars.map((b) => b.group ?? ''))];
  const out = header(width, height, chart.title, chart.subtitle);

  for (let t = 0; t <= axis.max + axis.step / 2; t += axis.step) {
    const x = xOf(t);
    out.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + plotH}" stroke="#e0e0e0"/>`);
    out.push(
      `<text x="${x.toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${esc(fmt(t))}</text>`,
    );
  }
  out.push(
    `<text x="${labelW + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle" font-size="12" ${FONT}>${esc(chart.unit)}</text>`,
  );
  chart.bars.forEach((b, i) => {
    const y = top + i * rowH;
    const colour = PALETTE[groups.indexOf(b.group ?? '') % PALETTE.length];
    const w = Math.max(0, xOf(b.value) - labelW);
    out.push(
      `<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" text-anchor="end" font-size="12" ${FONT}>${esc(b.label)}</text>`,
    );
    out.push(`<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${colour}"/>`);
    if (b.range) {
      const [lo, hi] = b.range;
      const cy = y + rowH / 2;
      out.push(
        `<line x1="${xOf(lo).toFixed(1)}" y1="${cy}" x2="${xOf(hi).toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1.2"/>`,
      );
      for (const v of [lo, hi])
        out.push(
          `<line x1="${xOf(v).toFixed(1)}" y1="${cy - 5}" x2="${xOf(v).toFixed(1)}" y2="${cy + 5}" stroke="#222" stroke-width="1.2"/>`,
        );
    }
    const noteX = Math.max(xOf(b.value), b.range ? xOf(b.range[1]) : 0) + 6;
    out.push(
      `<text x="${noteX.toFixed(1)}" y="${y + rowH / 2 + 4}" font-size="11" ${FONT}>${esc(b.note ?? `${fmt(b.value)} ${chart.unit}`)}</text>`,
    );
  });
  out.push(`<line x1="${labelW}" y1="${top}" x2="${labelW}" y2="${top + plotH}" stroke="#222"/>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Line chart over categorical x (e.g. client counts), one coloured line per series, legend on the right. */
export function lineChartSvg(chart: LineChart): string {
  const left = 70;
  const plotW = 440;
  const legendW = 170;
  const width = left + plotW + legendW;
  const top = chart.subtitle ? 58 : 44;
  const plotH = 260;
  const height = top + plotH + 50;
  const all = chart.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const axis = niceAxis(Math.max(0, ...all));
  const n = chart.x.length;
  const xOf = (i: number): number => left + (n <= 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const yOf = (v: number): number => top + plotH - (Math.max(0, v) / axis.max) * plotH;
  const out = header(width, height, chart.title, chart.subtitle);

  for (let t = 0; t <= axis.max + axis.step / 2; t += axis.step) {
    const y = yOf(t);
    out.push(`<line x1="${left}" y1="${y.toFixed(1)}" x2="${left + plotW}" y2="${y.toFixed(1)}" stroke="#e0e0e0"/>`);
    out.push(
      `<text x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11" ${FONT}>${esc(fmt(t))}</text>`,
    );
  }
  chart.x.forEach((label, i) => {
    out.push(
      `<text x="${xOf(i).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${esc(label)}</text>`,
    );
  });
  out.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle" font-size="12" ${FONT}>${esc(chart.xLabel)}</text>`,
  );
  out.push(
    `<text x="16" y="${top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${top + plotH / 2})" ${FONT}>${esc(chart.yLabel)}</text>`,
  );
  out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#222"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#222"/>`);
  chart.series.forEach((s, si) => {
    const colour = PALETTE[si % PALETTE.length];
    const pts = s.values
      .map((v, i) => (v === null ? null : `${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`))
      .filter((p): p is string => p !== null);
    if (pts.length > 1)
      out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${colour}"/>`);
    }
    const ly = top + 10 + si * 20;
    out.push(
      `<line x1="${left + plotW + 16}" y1="${ly}" x2="${left + plotW + 36}" y2="${ly}" stroke="${colour}" stroke-width="3"/>`,
    );
    out.push(`<text x="${left + plotW + 42}" y="${ly + 4}" font-size="12" ${FONT}>${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
