// Issue 20 item 9: the monitor connection's reconnect backoff is measured on the monotonic
// clock. A wall-clock step of -1 h must not keep a recovered backend down for an hour ("next
// reconnect in 3599999 ms"), and +1 h must not skip the backoff. The "server" is a TCP listener
// on 127.0.0.1 port 0 that accepts each connection and closes it at once (a login that fails),
// counting them: the count is the checker's decision to reconnect or wait.
import { test, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MysqlChecker } from '../../src/health/mysql-check';

const HOUR = 3600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a wall-clock step of -1 h or +1 h changes no reconnect decision', async () => {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => {
    server.close();
    mock.restoreAll();
  });
  const port = (server.address() as net.AddressInfo).port;
  const c = new MysqlChecker({
    host: '127.0.0.1',
    port,
    user: 'monitor',
    password: () => 'not-in-any-message',
    connectTimeoutMs: 500,
    queryTimeoutMs: 500,
    intervalMs: 200,
    freshConnectIntervalMs: 60_000,
  });
  after(() => c.close());
  const realNow = Date.now.bind(Date);
  const step = (ms: number) => mock.method(Date, 'now', () => realNow() + ms);

  // Backoff: interval × 2^(n-1), minus one interval of slack: 0, then 200 ms, then 600 ms.
  let p = await c.check();
  assert.equal(p.ok, false);
  assert.equal(connections, 1);
  p = await c.check();
  assert.equal(connections, 2, 'the first retry is not delayed');

  step(-HOUR);
  p = await c.check();
  assert.equal(connections, 2, 'within the 200 ms backoff: no reconnect');
  const wait = Number(/next reconnect in (\d+) ms/.exec(p.error ?? '')?.[1]);
  assert.ok(wait > 0 && wait <= 200, `the wait is what is left of 200 ms, not an hour: ${p.error}`);
  await sleep(250);
  p = await c.check();
  assert.equal(
    connections,
    3,
    `after the backoff the checker reconnects despite the clock stepped back an hour: ${p.error}`,
  );

  mock.restoreAll();
  step(+HOUR);
  p = await c.check();
  assert.equal(connections, 3, 'a clock stepped forward an hour does not skip the 600 ms backoff');
  const wait2 = Number(/next reconnect in (\d+) ms/.exec(p.error ?? '')?.[1]);
  assert.ok(wait2 > 200 && wait2 <= 600, p.error ?? '');
});
