// MySQL-aware health checks, roles and the writer election. See monitor.ts (the checker the
// daemon runs) and election.ts (the one writer election; src/desired reads its result).

export { HealthMonitor, type HealthMonitorOptions } from './monitor';
export { electWriter, electWriters, needsWriter } from './election';
export { lcTargetWeights, LcDamper } from './lc';
export { riseFallStep, initialRiseFall } from './rise-fall';
export { MysqlChecker, parseReplicaStatus, replicaLag, roleOf } from './mysql-check';
export { tcpCheck } from './tcp-check';
export { readPassword } from './password';
export * from './types';
export { initialFromPinned } from './adopt';
