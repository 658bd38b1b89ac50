// Issue 20 item 9: BGP's announce hold-down (backend states steady for fall × interval, at least
// 2 s) is measured on the monotonic clock: a wall-clock step of +1 h does not release it at
// once, -1 h does not stretch it by an hour.
import { test, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SteadySince } from '../../src/bgp/hold-down';

const HOUR = 3600_000;
const realNow = Date.now.bind(Date);
const step = (ms: number) => mock.method(Date, 'now', () => realNow() + ms);
afterEach(() => mock.restoreAll());

test("the daemon's hold-down (default clock) holds after a +1 h wall-clock step right after a change", () => {
  const s = new SteadySince();
  s.changed();
  step(+HOUR);
  assert.match(
    s.holdDown(2000) ?? 'released',
    /^backend states changed 0\.0 s ago: announcing waits until they are steady for 2\.0 s/,
  );
  mock.restoreAll();
  step(-HOUR);
  assert.match(s.holdDown(2000) ?? 'released', /^backend states changed 0\.0 s ago/);
});

test('stepped -1 h and +1 h, the hold-down is released exactly when the monotonic clock says', () => {
  let mono = 5000;
  const s = new SteadySince(() => mono);
  s.changed();
  step(-HOUR);
  mono += 1999;
  assert.match(s.holdDown(2000) ?? 'released', /changed 2\.0 s ago: announcing waits/);
  mock.restoreAll();
  step(+HOUR);
  assert.notEqual(s.holdDown(2000), undefined, '1999 ms steady: still held');
  mono += 1;
  assert.equal(s.holdDown(2000), undefined, '2000 ms steady: released');
  step(-HOUR);
  s.changed();
  assert.notEqual(s.holdDown(2000), undefined, 'a new change holds again');
});
