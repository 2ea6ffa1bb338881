import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSizeMib } from './size.js';
import { UsageError } from './errors.js';

test('sizes with and without units', () => {
  assert.equal(parseSizeMib('64M', 'x'), 64);
  assert.equal(parseSizeMib('64', 'x'), 64);
  assert.equal(parseSizeMib('2G', 'x'), 2048);
  assert.equal(parseSizeMib('512MiB', 'x'), 512);
  assert.equal(parseSizeMib('1gib', 'x'), 1024);
});

test('anything else is a UsageError naming the option', () => {
  for (const bad of ['', 'M', '64.5M', '-1', '1T', '0x10', '64 M B', '1e3']) {
    assert.throws(() => parseSizeMib(bad, '--mem'), (e: unknown) => e instanceof UsageError && e.message.startsWith('--mem'), bad);
  }
  fc.assert(fc.property(fc.string(), (s) => {
    try {
      assert.ok(Number.isSafeInteger(parseSizeMib(s, '--mem')));
    } catch (e) {
      assert.ok(e instanceof UsageError);
    }
  }));
});
