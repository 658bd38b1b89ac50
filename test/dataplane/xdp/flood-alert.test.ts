// The flood alert the XDP dataplane raises from the guard counters (layout.ts floodAlert). Pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floodAlert } from '../../../src/dataplane/xdp/layout';

const none = { embryonic: 0, takeovers: 0, handshakes: 0, limited: 0 };

test('no alert while the takeover and probation tables turn over slower than their limits and nothing is rate-limited', () => {
  // 262144 entries: a minute of takeovers is 4369/s, ten seconds of handshakes 26214/s.
  assert.equal(
    floodAlert({ ...none, embryonic: 1_000_000, takeovers: 2 * 4000, handshakes: 2 * 20000 }, 2, 262144, 10000),
    undefined,
  );
});

test('bare ACKs that turn the takeover tables over within a minute raise the alert, naming the rate and the turnover', () => {
  const a = floodAlert({ ...none, takeovers: 2 * 100_000 }, 2, 262144, 10000);
  assert.match(a ?? '', /100000 new takeover-table entries\/s .* over in 3 s/);
});

test('fake handshakes that churn the probation tables, and proven flows held back by new_flow_rate, raise it too', () => {
  assert.match(
    floodAlert({ ...none, handshakes: 2 * 50_000 }, 2, 262144, 10000) ?? '',
    /50000 handshakes\/s turn the 262144-entry probation tables over in 5 s/,
  );
  assert.match(
    floodAlert({ ...none, limited: 10 }, 2, 262144, 10000) ?? '',
    /5 flows\/s held back by xdp.new_flow_rate \(10000\/s\)/,
  );
});
