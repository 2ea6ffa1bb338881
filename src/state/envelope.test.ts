// The state envelope: round trips over random section trees, and every way a reader must refuse
// bytes (random, truncated, bit-flipped, wrong magic, future version, oversized, wrong kind).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32c } from './crc32c.js';
import {
  CURRENT_FORMAT_VERSION, ENVELOPE_HEADER_BYTES, StateKind, decodeEnvelope, encodeEnvelope,
} from './envelope.js';
import { StateFormatError, type StateFormatErrorCode } from './errors.js';
import type { StateObject, StateTree, StateValue } from './tree.js';
import { encodeUtf8 } from './utf8.js';

const fieldName = fc.string({ maxLength: 12 }).filter((k) => k !== '$b64');

const { value: stateValue } = fc.letrec<{ value: StateValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fieldName, tie('value'), { maxKeys: 4, noNullPrototype: true }),
  ),
}));

const fields = fc.dictionary(fieldName, stateValue, { maxKeys: 6, noNullPrototype: true }) as fc.Arbitrary<StateObject>;
const sectionId = fc.oneof(fc.constantFrom('platform/cpus', 'platform/kvm', 'vcpus/0', 'devices/serial0'), fc.string({ maxLength: 16 }));
const stateTree: fc.Arbitrary<StateTree> = fc.dictionary(
  sectionId, fc.record({ v: fc.integer({ min: 1, max: 0xffff }), f: fields }), { maxKeys: 5, noNullPrototype: true },
).map((sections) => ({ sections }));
const kind = fc.constantFrom(StateKind.PlatformRecord, StateKind.VmState, StateKind.VmDefinition);

const SAMPLE: StateTree = {
  sections: {
    'platform/cpus': { v: 1, f: { count: 2, model: 'AMD EPYC', ids: [0, 1], blob: new Uint8Array([1, 2, 3]) } },
    'vcpus/0': { v: 3, f: { regs: { rip: 4096, ok: true, none: null } } },
  },
};

function rejects(bytes: Uint8Array, code: StateFormatErrorCode, opts = { expectKind: StateKind.PlatformRecord } as { expectKind: StateKind; maxBytes?: number }): StateFormatError {
  let caught: unknown;
  try {
    decodeEnvelope(bytes, opts);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StateFormatError, `expected StateFormatError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function rejectsSomehow(bytes: Uint8Array, opts = { expectKind: StateKind.PlatformRecord }): void {
  assert.throws(() => decodeEnvelope(bytes, opts), (e: unknown) => e instanceof StateFormatError && e.code.startsWith('ERR_STATE_'));
}

/** A well-formed header over `payload`, with fields overridden. */
function handMade(payload: Uint8Array, o: { version?: number; kind?: number; flags?: number; length?: bigint; crc?: number; magic?: string } = {}): Uint8Array {
  const b = new Uint8Array(ENVELOPE_HEADER_BYTES + payload.length);
  const v = new DataView(b.buffer);
  b.set(encodeUtf8(o.magic ?? 'SWAPVSR\0'), 0);
  v.setUint16(8, o.version ?? 1, true); // these hand-made payloads are format 1 (JSON)
  v.setUint16(10, o.kind ?? StateKind.PlatformRecord, true);
  v.setUint32(12, o.flags ?? 0, true);
  v.setBigUint64(16, o.length ?? BigInt(payload.length), true);
  v.setUint32(24, o.crc ?? crc32c(payload), true);
  b.set(payload, ENVELOPE_HEADER_BYTES);
  return b;
}

describe('state envelope', () => {
  it('round-trips random section trees (property)', () => {
    fc.assert(fc.property(kind, stateTree, fc.constantFrom(1, 2), (k, tree, format) => {
      const d = decodeEnvelope(encodeEnvelope(k, tree, format), { expectKind: k });
      assert.equal(d.kind, k);
      assert.equal(d.formatVersion, format);
      assert.deepStrictEqual(d.content, tree);
    }), { numRuns: 1500 });
  });

  it('writes the documented header layout', () => {
    const b = encodeEnvelope(StateKind.PlatformRecord, SAMPLE);
    const v = new DataView(b.buffer);
    assert.equal(new TextDecoder().decode(b.subarray(0, 8)), 'SWAPVSR\0');
    assert.equal(v.getUint16(8, true), 1);
    assert.equal(v.getUint16(10, true), StateKind.PlatformRecord);
    assert.equal(v.getUint32(12, true), 0);
    assert.equal(v.getBigUint64(16, true), BigInt(b.length - 32));
    assert.equal(v.getUint32(24, true), crc32c(b.subarray(32)));
    assert.equal(v.getUint32(28, true), 0);
    const json = JSON.parse(new TextDecoder().decode(b.subarray(32)));
    assert.deepEqual(json.sections['platform/cpus'].f.blob, { $b64: 'AQID' });
  });

  it('rejects random bytes (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => rejectsSomehow(b)), { numRuns: 2000 });
    // Random bytes behind a valid magic exercise the deeper checks.
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
      const b = new Uint8Array(8 + tail.length);
      b.set(encodeUtf8('SWAPVSR\0'));
      b.set(tail, 8);
      rejectsSomehow(b);
    }), { numRuns: 2000 });
  });

  it('rejects every truncation of a valid envelope as ERR_STATE_TRUNCATED', () => {
    const b = encodeEnvelope(StateKind.PlatformRecord, SAMPLE);
    for (let n = 0; n < b.length; n++) rejects(b.subarray(0, n), 'ERR_STATE_TRUNCATED');
  });

  it('rejects truncations of random trees (property)', () => {
    fc.assert(fc.property(stateTree, fc.nat(), (tree, at) => {
      const b = encodeEnvelope(StateKind.VmState, tree);
      rejects(b.subarray(0, at % b.length), 'ERR_STATE_TRUNCATED', { expectKind: StateKind.VmState });
    }), { numRuns: 1000 });
  });

  it('rejects any flipped payload bit as ERR_STATE_CHECKSUM and any flipped bit at all (property)', () => {
    fc.assert(fc.property(stateTree, fc.nat(), fc.integer({ min: 0, max: 7 }), (tree, at, bit) => {
      const b = encodeEnvelope(StateKind.PlatformRecord, tree);
      const payloadLen = b.length - ENVELOPE_HEADER_BYTES;
      const p = b.slice();
      p[ENVELOPE_HEADER_BYTES + (at % payloadLen)] ^= 1 << bit;
      rejects(p, 'ERR_STATE_CHECKSUM');
      const h = b.slice();
      const hi = at % 28; // the reserved word (28..31) is ignored by design
      h[hi] ^= 1 << bit;
      rejectsSomehow(h);
    }), { numRuns: 1500 });
  });

  it('ignores the reserved word', () => {
    const b = encodeEnvelope(StateKind.PlatformRecord, SAMPLE);
    new DataView(b.buffer).setUint32(28, 0xdeadbeef, true);
    assert.deepStrictEqual(decodeEnvelope(b, { expectKind: StateKind.PlatformRecord }).content, SAMPLE);
  });

  it('rejects a wrong magic', () => {
    const payload = encodeUtf8('{"sections":{}}');
    const e = rejects(handMade(payload, { magic: 'SWAPVSX\0' }), 'ERR_STATE_MAGIC');
    assert.match(e.message, /not swapvisor state/);
    rejects(encodeUtf8('{"sections":{}}'), 'ERR_STATE_MAGIC');
    rejects(encodeUtf8('SWAPV'.slice(0, 3) + 'X'), 'ERR_STATE_MAGIC');
  });

  it('rejects versions outside the window, saying which it reads', () => {
    const payload = encodeUtf8('{"sections":{}}');
    const future = rejects(handMade(payload, { version: CURRENT_FORMAT_VERSION + 1 }), 'ERR_STATE_VERSION');
    assert.match(future.message, /newer swapvisor/);
    assert.match(future.message, new RegExp(`reads format versions 1\\.\\.${CURRENT_FORMAT_VERSION}`));
    rejects(handMade(payload, { version: 0 }), 'ERR_STATE_VERSION');
    rejects(handMade(payload, { version: 0xffff }), 'ERR_STATE_VERSION');
    rejects(handMade(payload, { flags: 1 }), 'ERR_STATE_VERSION');
    assert.deepStrictEqual(decodeEnvelope(handMade(payload), { expectKind: StateKind.PlatformRecord }).content, { sections: {} });
  });

  it('rejects an oversized length field or envelope', () => {
    const payload = encodeUtf8('{"sections":{}}');
    rejects(handMade(payload, { length: 0xffffffffffffffffn }), 'ERR_STATE_OVERSIZED');
    rejects(handMade(payload, { length: 1n << 40n }), 'ERR_STATE_OVERSIZED');
    const b = encodeEnvelope(StateKind.PlatformRecord, SAMPLE);
    rejects(b, 'ERR_STATE_OVERSIZED', { expectKind: StateKind.PlatformRecord, maxBytes: b.length - 1 });
    rejects(handMade(payload, { length: 100n }), 'ERR_STATE_OVERSIZED', { expectKind: StateKind.PlatformRecord, maxBytes: 64 });
    decodeEnvelope(b, { expectKind: StateKind.PlatformRecord, maxBytes: b.length });
  });

  it('rejects a kind the caller did not ask for, and the Invalid kind', () => {
    const b = encodeEnvelope(StateKind.VmDefinition, SAMPLE);
    const e = rejects(b, 'ERR_STATE_KIND');
    assert.match(e.message, /expected PlatformRecord state but this holds VmDefinition/);
    rejects(handMade(encodeUtf8('{"sections":{}}'), { kind: 0 }), 'ERR_STATE_KIND');
    rejects(handMade(encodeUtf8('{"sections":{}}'), { kind: 77 }), 'ERR_STATE_KIND');
    assert.throws(() => encodeEnvelope(StateKind.Invalid, SAMPLE), { code: 'ERR_STATE_KIND' });
  });

  it('rejects malformed content behind a valid checksum', () => {
    for (const text of ['not json', '[]', '{}', '{"sections":[]}', '{"sections":{"a":{"v":0,"f":{}}}}',
      '{"sections":{"a":{"v":1.5,"f":{}}}}', '{"sections":{"a":{"v":1,"f":[]}}}', '{"sections":{"a":{"v":1}}}',
      '{"sections":{"a":{"v":1,"f":{"x":{"$b64":"QR=="}}}}}', '{"sections":{"a":{"v":1,"f":{"x":{"$b64":"QQ==","y":1}}}}}',
      '{"sections":{"a":{"v":1,"f":{"$b64":"QQ=="}}}}']) {
      rejects(handMade(encodeUtf8(text)), 'ERR_STATE_CONTENT');
    }
    rejects(handMade(new Uint8Array([0x7b, 0xff, 0x7d])), 'ERR_STATE_CONTENT');
    const deep = `{"sections":{"a":{"v":1,"f":{"x":${'['.repeat(100)}${']'.repeat(100)}}}}}`;
    rejects(handMade(encodeUtf8(deep)), 'ERR_STATE_CONTENT');
    const b = encodeEnvelope(StateKind.PlatformRecord, SAMPLE);
    const trailing = new Uint8Array(b.length + 1);
    trailing.set(b);
    rejects(trailing, 'ERR_STATE_CONTENT');
  });

  it('tolerates unknown top-level keys and section keys from a newer writer', () => {
    const text = '{"sections":{"a":{"v":2,"f":{"x":1},"extra":true}},"newTopLevel":{}}';
    assert.deepStrictEqual(decodeEnvelope(handMade(encodeUtf8(text)), { expectKind: StateKind.PlatformRecord }).content,
      { sections: { a: { v: 2, f: { x: 1 } } } });
  });

  it('refuses to write what JSON cannot carry', () => {
    const bad: StateObject[] = [{ x: Number.NaN }, { x: Number.POSITIVE_INFINITY }, { $b64: 'QQ==' }, { x: { $b64: 1 } }];
    for (const f of bad) assert.throws(() => encodeEnvelope(StateKind.VmState, { sections: { a: { v: 1, f } } }), { code: 'ERR_STATE_CONTENT' });
    assert.throws(() => encodeEnvelope(StateKind.VmState, { sections: { a: { v: 0, f: {} } } }), { code: 'ERR_STATE_CONTENT' });
  });

  it('keeps "__proto__" as a plain field name', () => {
    const f = JSON.parse('{"__proto__":{"polluted":1}}') as StateObject;
    const d = decodeEnvelope(encodeEnvelope(StateKind.VmState, { sections: { a: { v: 1, f } } }), { expectKind: StateKind.VmState });
    assert.deepEqual(Object.keys(d.content.sections.a.f), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
