import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { API_ERROR_STATUS, ApiError, errorBody, toApiError, type ApiErrorCode } from './errors.js';
import { responseValidator } from './validate.js';

test('each code has its one status', () => {
  assert.equal(new ApiError('ERR_VALIDATION', 'x').status, 400);
  assert.equal(new ApiError('ERR_VM_EXISTS', 'x').status, 409);
  assert.equal(new ApiError('ERR_BODY_TOO_LARGE', 'x').status, 413);
  assert.equal(new ApiError('ERR_BUDGET_EXCEEDED', 'x').status, 507);
  const cause = new Error('inner');
  const e = new ApiError('ERR_VM_STATE', 'VM "a" is running: stop it first', { cause });
  assert.equal(e.cause, cause);
  assert.equal(e.name, 'ApiError');
  assert.deepEqual(errorBody(e), { error: { code: 'ERR_VM_STATE', message: 'VM "a" is running: stop it first' } });
});

test('anything that is not an ApiError becomes ERR_INTERNAL without leaking its message', () => {
  const secret = new Error('EACCES: /etc/shadow');
  const api = toApiError(secret);
  assert.equal(api.status, 500);
  assert.equal(api.cause, secret);
  assert.ok(!errorBody(secret).error.message.includes('shadow'));
  assert.equal(toApiError(api), api);
});

test('error bodies are one line, bounded, and match the Error schema', () => {
  const check = responseValidator('Error');
  const codes = Object.keys(API_ERROR_STATUS) as ApiErrorCode[];
  fc.assert(fc.property(fc.oneof(fc.anything(), fc.tuple(fc.constantFrom(...codes), fc.string({ maxLength: 3000 }))), (thrown) => {
    const value = Array.isArray(thrown) && thrown.length === 2 && codes.includes(thrown[0]) ? new ApiError(thrown[0], thrown[1]) : thrown;
    const body = check(errorBody(value));
    assert.ok(!/[\r\n]/.test(body.error.message) && body.error.message.length <= 1024);
  }), { numRuns: 2000 });
});
