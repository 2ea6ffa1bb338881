// The installed accelerators give exactly the portable implementations' results: the addon's
// CRC-32C (continuation included) and Node's base64, which must refuse the same strings.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeBase64Portable, encodeBase64Portable } from '../state/base64.js';
import { crc32cPortable } from '../state/crc32c.js';
import { nativeCrc32c } from '../sys/checksum.js';
import { nodeBase64 } from './accelerators.js';

test('native CRC-32C equals the portable one, whole and continued', () => {
  assert.equal(nativeCrc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
    assert.equal(nativeCrc32c(a), crc32cPortable(a));
    assert.equal(nativeCrc32c(b, nativeCrc32c(a)), crc32cPortable(b, crc32cPortable(a)));
    assert.equal(nativeCrc32c(a.subarray(1)), crc32cPortable(a.subarray(1)), 'unaligned views');
  }), { numRuns: 3000 });
});

test('Node base64 encodes like the portable codec and accepts exactly the same strings', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    const s = encodeBase64Portable(bytes);
    assert.equal(nodeBase64.encode(bytes), s);
    assert.deepEqual(nodeBase64.decode(s), decodeBase64Portable(s));
  }), { numRuns: 3000 });
  const near = fc.oneof(
    fc.string({ maxLength: 24 }),
    fc.uint8Array({ maxLength: 30 }).map((b) => encodeBase64Portable(b)).chain((s) => fc.tuple(fc.constant(s), fc.nat({ max: Math.max(0, s.length) }), fc.constantFrom('=', 'A', '-', '_', ' ', '\n', '/', '+', 'é', '')).map(([t, i, c]) => t.slice(0, i) + c + t.slice(i + 1))),
  );
  fc.assert(fc.property(near, (s) => {
    const portable = decodeBase64Portable(s);
    const node = nodeBase64.decode(s);
    assert.deepEqual(node === null ? null : [...node], portable === null ? null : [...portable], JSON.stringify(s));
  }), { numRuns: 5000 });
});
