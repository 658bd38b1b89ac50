// Operator targets (src/desired/targets.ts): BACKEND or SERVICE/BACKEND, checked against the
// config, with errors that name the unknown part and list the valid names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveTarget } from '../../src/desired/targets';
import { testConfig } from '../lib/config';

const services = testConfig({
  services: [
    {
      name: 'rw',
      check: 'none',
      backends: [
        { address: '10.0.0.1', port: 3306, name: 'db1' },
        { address: '10.0.0.2', port: 3306, name: 'db2' },
      ],
    },
    {
      name: 'ro',
      check: 'none',
      backends: [
        { address: '10.0.0.2', port: 3306, name: 'db2' },
        { address: '10.0.0.3', port: 3306, name: 'db3' },
      ],
    },
  ],
}).services;

test('BACKEND and SERVICE/BACKEND resolve by name or address:port, stored by name', () => {
  assert.deepEqual(resolveTarget(services, 'db1'), { text: 'db1', given: 'db1', backend: 'db1' });
  assert.deepEqual(resolveTarget(services, 'ro/db3'), {
    text: 'ro/db3',
    given: 'ro/db3',
    service: 'ro',
    backend: 'db3',
  });
  assert.deepEqual(resolveTarget(services, 'rw/10.0.0.2:3306'), {
    text: 'rw/db2',
    given: 'rw/10.0.0.2:3306',
    service: 'rw',
    backend: 'db2',
  });
  assert.deepEqual(resolveTarget(services, '10.0.0.3:3306'), { text: 'db3', given: '10.0.0.3:3306', backend: 'db3' });
});

test('an unknown service is refused naming it and listing the services', () => {
  assert.throws(() => resolveTarget(services, 'nope/db1'), {
    code: 'XD_ERR_NOT_FOUND',
    message: "no service named nope: use one of the config's services (rw, ro)",
  });
});

test("a backend the service does not have is refused listing that service's backends", () => {
  assert.throws(() => resolveTarget(services, 'rw/db3'), {
    code: 'XD_ERR_NOT_FOUND',
    message: 'service rw has no backend named db3: use one of its backends (db1, db2), by name or address:port',
  });
});

test('an unknown backend is refused listing every backend name', () => {
  assert.throws(() => resolveTarget(services, 'db9'), {
    code: 'XD_ERR_NOT_FOUND',
    message:
      'no backend named db9: use a backend name or address:port from the config (db1, db2, db3), or SERVICE/BACKEND for one service',
  });
});
