// The one duration grammar of the config: a number and its unit (ms, s, m, h), bare numbers refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/duration';

test('durations in ms, s, m and h come out as milliseconds', () => {
  assert.deepEqual(parseDuration('250ms'), { value: 250 });
  assert.deepEqual(parseDuration('10s'), { value: 10_000 });
  assert.deepEqual(parseDuration('2m'), { value: 120_000 });
  assert.deepEqual(parseDuration('1h'), { value: 3_600_000 });
  assert.deepEqual(parseDuration('0s'), { value: 0 });
});

test('decimals are allowed where they make whole milliseconds', () => {
  assert.deepEqual(parseDuration('1.5s'), { value: 1500 });
  assert.deepEqual(parseDuration('0.07s'), { value: 70 });
  assert.deepEqual(parseDuration('0.25m'), { value: 15_000 });
  assert.match(
    (parseDuration('0.5ms') as { problem: string }).problem,
    /must be a whole number of milliseconds, got "0.5ms"/,
  );
});

test('a bare number, written as a number or as a string, is refused with both readings as the fix', () => {
  assert.deepEqual(parseDuration(10), {
    problem: 'is a bare number (10): durations need their unit, write 10s or 10ms',
  });
  assert.deepEqual(parseDuration('1000'), {
    problem: 'is a bare number ("1000"): durations need their unit, write 1000s or 1000ms',
  });
  assert.deepEqual(parseDuration(1.5), {
    problem: 'is a bare number (1.5): durations need their unit, write 1.5s or 1.5ms',
  });
});

test('zero, the same in every unit, may be written without one', () => {
  assert.deepEqual(parseDuration(0), { value: 0 });
  assert.deepEqual(parseDuration('0'), { value: 0 });
});

test('unknown units, signs, spaces inside and non-strings are refused with the grammar', () => {
  for (const v of ['5 parsecs', '1 sec', '-1s', '1 s', '1S', 's', '', true, [1]]) {
    const r = parseDuration(v);
    assert.ok('problem' in r, JSON.stringify(v));
    assert.match(
      r.problem,
      /must be a duration with its unit \(ms, s, m or h\), e\.g\. "500ms", "1\.5s" or "2m", got /,
    );
  }
});

test('milliseconds are written back in the largest whole unit', () => {
  assert.equal(formatDuration(3_600_000), '1h');
  assert.equal(formatDuration(120_000), '2m');
  assert.equal(formatDuration(9000), '9s');
  assert.equal(formatDuration(1500), '1500ms');
  assert.equal(formatDuration(0), '0ms');
});
