// MySQL-aware health checks, roles and pools. See monitor.ts (the checker the daemon runs)
// and pools.ts (the pure function that turns a snapshot into per-service backends).

export { HealthMonitor, type HealthMonitorOptions } from './monitor';
export { computeBackends, electWriter, backendKey, serviceCheck, servicePool } from './pools';
export { lcTargetWeights, LcDamper } from './lc';
export { riseFallStep, initialRiseFall } from './rise-fall';
export { MysqlChecker, parseReplicaStatus, replicaLag, roleOf } from './mysql-check';
export { tcpCheck } from './tcp-check';
export { readPassword } from './password';
export * from './types';
