// The shape every metrics renderer writes through (metrics.ts owns the text format).
export type Labels = Record<string, string | number>;
/** Writes one metric family (HELP, TYPE, one line per row). */
export type MetricWriter = (name: string, help: string, type: 'counter' | 'gauge', rows: [Labels, number][]) => void;
