// CRC-32C, base64 and UTF-8 of the pure state layer, checked against published vectors and
// against Node's own implementations on random input.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeBase64, encodeBase64 } from './base64.js';
import { crc32c } from './crc32c.js';
import { decodeUtf8, encodeUtf8 } from './utf8.js';

const ascii = (s: string): Uint8Array => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

describe('crc32c', () => {
  it('matches the published check values', () => {
    assert.equal(crc32c(ascii('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    // RFC 3720 appendix B.4
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  });

  it('continues over split input (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (b, at) => {
      const cut = at % (b.length + 1);
      assert.equal(crc32c(b.subarray(cut), crc32c(b.subarray(0, cut))), crc32c(b));
    }), { numRuns: 500 });
  });
});

describe('base64', () => {
  it('encodes like Buffer and round-trips (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const s = encodeBase64(b);
      assert.equal(s, Buffer.from(b).toString('base64'));
      assert.deepEqual(decodeBase64(s), new Uint8Array(b));
    }), { numRuns: 1000 });
  });

  it('accepts only canonical input (property over random strings)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 24 }), (s) => {
      const b = decodeBase64(s);
      if (b !== null) assert.equal(encodeBase64(b), s);
    }), { numRuns: 2000 });
    assert.equal(decodeBase64('QR=='), null, 'non-zero padding bits');
    assert.equal(decodeBase64('QQ=A'), null);
    assert.equal(decodeBase64('Q==='), null);
    assert.equal(decodeBase64('QQ'), null, 'missing padding');
    assert.deepEqual(decodeBase64('QQ=='), new Uint8Array([0x41]));
  });
});

describe('utf8', () => {
  it('encodes like TextEncoder and round-trips well-formed strings (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
      const b = encodeUtf8(s);
      assert.deepEqual(b, new TextEncoder().encode(s));
      assert.equal(decodeUtf8(b), s);
    }), { numRuns: 1000 });
  });

  it('replaces lone surrogates like TextEncoder', () => {
    assert.deepEqual(encodeUtf8('a\ud800b\udc00'), new TextEncoder().encode('a\ud800b\udc00'));
  });

  it('decodes random bytes exactly when a fatal TextDecoder does (property)', () => {
    const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 32 }), (b) => {
      let expected: string | null;
      try { expected = strict.decode(b); } catch { expected = null; }
      assert.equal(decodeUtf8(b), expected);
    }), { numRuns: 3000 });
    assert.equal(decodeUtf8(new Uint8Array([0xc0, 0x80])), null, 'overlong NUL');
    assert.equal(decodeUtf8(new Uint8Array([0xed, 0xa0, 0x80])), null, 'encoded surrogate');
    assert.equal(decodeUtf8(new Uint8Array([0xf4, 0x90, 0x80, 0x80])), null, 'above U+10FFFF');
  });
});
