// The process series prom-client's default metrics expose (same names, so the usual Node.js
// dashboards work), read by hand: no dependency for a dozen numbers.
import fs from 'node:fs';

export interface ProcessSample {
  startTimeSeconds: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  residentBytes: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  /** null when /proc/self/fd cannot be read. */
  openFds: number | null;
  nodeVersion: string;
}

export function sampleProcess(): ProcessSample {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  let openFds: number | null = null;
  try {
    openFds = fs.readdirSync('/proc/self/fd').length;
  } catch {
    /* no procfs: left out */
  }
  return {
    startTimeSeconds: Math.round(performance.timeOrigin) / 1000,
    cpuUserSeconds: cpu.user / 1e6,
    cpuSystemSeconds: cpu.system / 1e6,
    residentBytes: mem.rss,
    heapTotalBytes: mem.heapTotal,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
    openFds,
    nodeVersion: process.version,
  };
}
