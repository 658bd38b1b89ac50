// check: tcp (services that are not MySQL): a connect check with rise/fall.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { HealthMonitor } from '../../src/health/monitor';
import { tcpCheck } from '../../src/health/tcp-check';
import { desiredState } from '../../src/desired';
import { healthInputs } from '../lib/config';
import { captureLog, until } from './cluster';

const servers: net.Server[] = [];
after(async () => {
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
});

async function listen(port = 0): Promise<net.Server> {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
  servers.push(s);
  return s;
}

test('a TCP check succeeds against a listener and says "connection refused" without one', async () => {
  const s = await listen();
  const port = (s.address() as net.AddressInfo).port;
  assert.deepEqual((await tcpCheck('127.0.0.1', port, 500)).error, null);
  await new Promise<void>((r) => s.close(() => r()));
  const r = await tcpCheck('127.0.0.1', port, 500);
  assert.equal(r.ok, false);
  assert.equal(r.error, `connection refused by 127.0.0.1:${port} (nothing listening)`);
});

test('a tcp service backend goes down when its listener closes and comes back after rise', async () => {
  let s = await listen();
  const port = (s.address() as net.AddressInfo).port;
  const inputs = healthInputs({
    services: [{ name: 'web', check: 'tcp', backends: [{ address: '127.0.0.1', port, name: 'w1' }] }],
    health: { interval: 100, timeout: 80 },
  });
  const hm = new HealthMonitor({ ...inputs, log: captureLog().log });
  const state = (): string =>
    desiredState({ services: inputs.services, health: hm.snapshot(), drained: new Set(), macs: new Map() }).state
      .services[0].backends[0].state;
  hm.start();
  try {
    await until(hm, (x) => x.backends[0].up, 2000, 'up');
    assert.equal(hm.snapshot().backends[0].role, 'none');
    await new Promise<void>((r) => s.close(() => r()));
    await until(hm, (x) => !x.backends[0].up, 2000, 'down');
    assert.equal(state(), 'down');
    s = await listen(port);
    await until(hm, (x) => x.backends[0].up, 2000, 'up again');
    assert.equal(state(), 'active');
  } finally {
    await hm.stop();
  }
});
