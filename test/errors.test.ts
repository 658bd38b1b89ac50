// The product's XdError and the tooling's ToolError are one CodedError: same code, detail, cause
// and "outer: inner" chaining, each with its own catalogue. Pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodedError, codes, wrap, XdError } from '../src/errors';
import { ToolError, toolCodes, toolWrap } from '../scripts/errors';

test('XdError and ToolError carry their code, detail and cause, and name themselves', () => {
  const inner = new Error('Operation not supported');
  const x = wrap('XD_ERR_XDP_ATTACH', 'attach xdp to eth0', inner, { ifname: 'eth0' });
  const t = toolWrap('XD_ERR_LAB', 'build the lab', x);
  assert.ok(x instanceof XdError && x instanceof CodedError && !(x instanceof ToolError));
  assert.ok(t instanceof ToolError && t instanceof CodedError && !(t instanceof XdError));
  assert.deepEqual([x.name, x.code, x.detail, x.cause], ['XdError', 'XD_ERR_XDP_ATTACH', { ifname: 'eth0' }, inner]);
  assert.deepEqual([t.name, t.code, t.detail, t.cause], ['ToolError', 'XD_ERR_LAB', {}, x]);
  assert.equal(t.message, 'build the lab: attach xdp to eth0: Operation not supported');
  assert.equal(new XdError('XD_ERR_USAGE', 'no cause').cause, undefined);
});

test('the tooling codes stay out of the product catalogue', () => {
  assert.deepEqual(
    Object.keys(toolCodes).filter((c) => c in codes),
    [],
  );
});
