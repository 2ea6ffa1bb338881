// The handover framing: messages of every size survive encode → decode, and every malformed frame
// (random, truncated, bit-flipped, future version, unknown type, out of order, interleaved,
// oversized, bad body) is refused with a HandoverError carrying the expected code, never another
// exception and never a hang. After a sequence error the decoder takes the next message cleanly.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32c } from '../state/crc32c.js';
import { SEQPACKET_MAX_BYTES } from '../sys/seqpacket.js';
import {
  FRAME_HEADER_BYTES, HANDOVER_MAGIC, HandoverError, MAX_FRAGMENT_PAYLOAD, MAX_MESSAGE_BYTES, type Message, MessageDecoder,
  MessageType, PROTOCOL_VERSION, encodeMessage, int, range, str,
} from './protocol.js';

type Code = HandoverError['code'];

const FLAG_MORE = 1;
/** The highest type this build knows; computed, so adding a message type does not break the tests. */
const LAST_TYPE = Math.max(...Object.values(MessageType).filter((v): v is number => typeof v === 'number'));
const validType = fc.integer({ min: 1, max: LAST_TYPE }) as fc.Arbitrary<MessageType>;
const messageId = fc.integer({ min: 0, max: 0xffffffff });
/** Bodies as they come back from JSON (no undefined, no -0). */
const body = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5, noNullPrototype: true })
  .map((b) => JSON.parse(JSON.stringify(b)) as Record<string, unknown>);
const smallMessage: fc.Arbitrary<Message> = fc.record({ type: validType, body, blob: fc.uint8Array({ maxLength: 300 }) });

/** The u32 JSON length + JSON + blob payload a message's fragments carry when joined. */
function payloadOf(m: Message): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(m.body));
  const p = new Uint8Array(4 + json.length + m.blob.length);
  new DataView(p.buffer).setUint32(0, json.length, true);
  p.set(json, 4);
  p.set(m.blob, 4 + json.length);
  return p;
}

interface FrameFields {
  magic?: number;
  version?: number;
  type?: number;
  id?: number;
  index?: number;
  flags?: number;
  length?: number;
  crc?: number;
}

/** The frame checksum as the protocol defines it: CRC-32C of header bytes 0-19, then the payload. */
function frameCrc(f: Uint8Array): number {
  return crc32c(f.subarray(FRAME_HEADER_BYTES), crc32c(f.subarray(0, 20)));
}

/** A hand-built frame, valid unless a field is overridden (the CRC follows header and payload unless given). */
function frame(payload: Uint8Array, f: FrameFields = {}): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, f.magic ?? HANDOVER_MAGIC, true);
  v.setUint16(4, f.version ?? PROTOCOL_VERSION, true);
  v.setUint16(6, f.type ?? MessageType.Hello, true);
  v.setUint32(8, f.id ?? 1, true);
  v.setUint16(12, f.index ?? 0, true);
  v.setUint16(14, f.flags ?? 0, true);
  v.setUint32(16, f.length ?? payload.length, true);
  out.set(payload, FRAME_HEADER_BYTES);
  v.setUint32(20, f.crc ?? frameCrc(out), true);
  return out;
}

/** A single-frame message whose payload is `json` bytes (taken as they are) and no blob. */
function bodyFrame(json: Uint8Array, type = MessageType.Hello): Uint8Array {
  const p = new Uint8Array(4 + json.length);
  new DataView(p.buffer).setUint32(0, json.length, true);
  p.set(json, 4);
  return frame(p, { type });
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectCode(fn: () => unknown, code: Code, message?: RegExp): HandoverError {
  const e = caught(fn);
  assert.ok(e instanceof HandoverError, `expected HandoverError ${code}, got ${e === undefined ? 'no error' : String(e)}`);
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return e;
}

/** Feeds all frames, returning the one message they make. */
function decodeAll(frames: readonly Uint8Array[], d = new MessageDecoder()): Message {
  let out: Message | undefined;
  frames.forEach((f, i) => {
    const m = d.push(f);
    if (i < frames.length - 1) {
      assert.equal(m, undefined, `fragment ${i} of ${frames.length} returned a message early`);
      assert.equal(d.partial, true);
    } else {
      out = m;
    }
  });
  assert.ok(out, 'the last fragment returned no message');
  assert.equal(d.partial, false);
  return out;
}

function assertSameMessage(got: Message, want: Message): void {
  assert.equal(got.type, want.type);
  assert.deepEqual(got.body, want.body);
  assert.equal(got.blob.length, want.blob.length);
  assert.ok(Buffer.from(got.blob).equals(Buffer.from(want.blob)), 'blob bytes differ');
}

/** A blob that makes the message payload exactly `payloadBytes` long for the given body. */
function blobForPayload(b: Record<string, unknown>, payloadBytes: number): Uint8Array {
  const jsonBytes = new TextEncoder().encode(JSON.stringify(b)).length;
  const blob = new Uint8Array(payloadBytes - 4 - jsonBytes);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 131 + (i >>> 8)) & 0xff;
  return blob;
}

describe('protocol: round trips', () => {
  it('small messages of every type survive encode → decode', () => {
    fc.assert(fc.property(messageId, smallMessage, (id, m) => {
      const frames = encodeMessage(id, m);
      assert.equal(frames.length, 1);
      const v = new DataView(frames[0]!.buffer);
      assert.equal(v.getUint32(8, true), id);
      assert.equal(v.getUint16(14, true), 0, 'a single fragment has no MORE flag');
      assertSameMessage(decodeAll(frames), m);
    }), { numRuns: 2000 });
  });

  it('an empty body and an empty blob make one small frame', () => {
    const frames = encodeMessage(7, { type: MessageType.Retire, body: {}, blob: new Uint8Array(0) });
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.length, FRAME_HEADER_BYTES + 4 + 2);
    assertSameMessage(decodeAll(frames), { type: MessageType.Retire, body: {}, blob: new Uint8Array(0) });
  });

  it('fragment boundaries: exactly one fragment, one byte more, exactly two, several', () => {
    const b = { vm: 'web-1', fds: [0, 1] };
    for (const [payloadBytes, fragments] of [
      [MAX_FRAGMENT_PAYLOAD - 1, 1], [MAX_FRAGMENT_PAYLOAD, 1], [MAX_FRAGMENT_PAYLOAD + 1, 2],
      [2 * MAX_FRAGMENT_PAYLOAD, 2], [2 * MAX_FRAGMENT_PAYLOAD + 1, 3], [7 * MAX_FRAGMENT_PAYLOAD + 12345, 8],
    ] as const) {
      const m = { type: MessageType.VmState, body: b, blob: blobForPayload(b, payloadBytes) };
      const frames = encodeMessage(42, m);
      assert.equal(frames.length, fragments, `payload of ${payloadBytes} bytes`);
      frames.forEach((f, i) => {
        const v = new DataView(f.buffer);
        assert.equal(v.getUint16(12, true), i, 'fragment index');
        assert.equal(v.getUint16(14, true), i < frames.length - 1 ? FLAG_MORE : 0, 'MORE on all but the last');
        assert.ok(f.length <= FRAME_HEADER_BYTES + MAX_FRAGMENT_PAYLOAD);
        assert.ok(f.length <= SEQPACKET_MAX_BYTES, 'every frame fits one SEQPACKET packet');
      });
      assertSameMessage(decodeAll(frames), m);
    }
  });

  it('multi-fragment messages up to a few MiB, one after another on one decoder', () => {
    const d = new MessageDecoder();
    fc.assert(fc.property(
      messageId, validType, body, fc.integer({ min: 0, max: 3 * 1024 * 1024 }), fc.integer({ min: 0, max: 255 }),
      (id, type, b, blobBytes, seed) => {
        const blob = new Uint8Array(blobBytes);
        for (let i = 0; i < blob.length; i += 997) blob[i] = (i + seed) & 0xff;
        const m = { type, body: b, blob };
        const frames = encodeMessage(id, m);
        assert.equal(frames.length, Math.max(1, Math.ceil(payloadOf(m).length / MAX_FRAGMENT_PAYLOAD)));
        assertSameMessage(decodeAll(frames, d), m);
      },
    ), { numRuns: 25 });
  });

  it('the largest message (MAX_MESSAGE_BYTES of payload) passes; one byte more is refused by the encoder', () => {
    const b = { vm: 'big' };
    const m = { type: MessageType.VmState, body: b, blob: blobForPayload(b, MAX_MESSAGE_BYTES) };
    assertSameMessage(decodeAll(encodeMessage(1, m)), m);
    expectCode(() => encodeMessage(2, { ...m, blob: blobForPayload(b, MAX_MESSAGE_BYTES + 1) }), 'ERR_HANDOVER_OVERSIZED');
  });
});

describe('protocol: malformed frames', () => {
  it('random bytes are refused with a HandoverError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const e = caught(() => new MessageDecoder().push(bytes));
      assert.ok(e instanceof HandoverError, `random bytes gave ${String(e)}`);
      assert.ok(e.code === 'ERR_HANDOVER_TRUNCATED' || e.code === 'ERR_HANDOVER_MAGIC', e.code);
    }), { numRuns: 2000 });
  });

  it('random headers behind a valid magic and version never raise anything but a HandoverError', () => {
    const header = fc.record({
      type: fc.integer({ min: 0, max: 0xffff }), id: messageId, index: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.integer({ min: 0, max: 0xffff }), length: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 0xffffffff })),
      crc: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 0xffffffff })),
    });
    fc.assert(fc.property(fc.array(fc.tuple(header, fc.uint8Array({ maxLength: 64 })), { minLength: 1, maxLength: 6 }), (frames) => {
      const d = new MessageDecoder();
      for (const [h, payload] of frames) {
        const e = caught(() => d.push(frame(payload, h)));
        assert.ok(e === undefined || e instanceof HandoverError, `gave ${String(e)}`);
      }
    }), { numRuns: 1500 });
  });

  it('every cut of a real frame is refused as truncated, and so is a frame with bytes added', () => {
    fc.assert(fc.property(messageId, smallMessage, fc.uint8Array({ minLength: 1, maxLength: 8 }), (id, m, extra) => {
      const [f] = encodeMessage(id, m);
      for (let cut = 0; cut < f!.length; cut++) {
        expectCode(() => new MessageDecoder().push(f!.subarray(0, cut)), 'ERR_HANDOVER_TRUNCATED');
      }
      const longer = new Uint8Array(f!.length + extra.length);
      longer.set(f!);
      longer.set(extra, f!.length);
      expectCode(() => new MessageDecoder().push(longer), 'ERR_HANDOVER_TRUNCATED');
    }), { numRuns: 300 });
  });

  it('every cut of a fragment of a multi-fragment message is refused as truncated', () => {
    const b = { vm: 'x' };
    const frames = encodeMessage(3, { type: MessageType.VmState, body: b, blob: blobForPayload(b, MAX_FRAGMENT_PAYLOAD + 100) });
    const d = new MessageDecoder();
    assert.equal(d.push(frames[0]!), undefined);
    for (const cut of [0, 1, 23, 24, 25, 60, 99, 123]) {
      expectCode(() => d.push(frames[1]!.subarray(0, cut)), 'ERR_HANDOVER_TRUNCATED');
    }
  });

  it('a payload too short for its length field, or a body length past the end, is truncated', () => {
    for (const p of [new Uint8Array(0), new Uint8Array(1), new Uint8Array(3)]) {
      expectCode(() => new MessageDecoder().push(frame(p)), 'ERR_HANDOVER_TRUNCATED', /shorter than its length field/);
    }
    const p = new Uint8Array(4 + 2);
    new DataView(p.buffer).setUint32(0, 3, true);
    p.set([0x7b, 0x7d], 4);
    expectCode(() => new MessageDecoder().push(frame(p)), 'ERR_HANDOVER_TRUNCATED', /says 3 bytes but only 2/);
  });

  it('a bit flip in the payload fails the checksum', () => {
    fc.assert(fc.property(messageId, smallMessage, fc.nat(), fc.integer({ min: 0, max: 7 }), (id, m, at, bit) => {
      const [f] = encodeMessage(id, m);
      const bad = f!.slice();
      bad[FRAME_HEADER_BYTES + (at % (bad.length - FRAME_HEADER_BYTES))]! ^= 1 << bit;
      expectCode(() => new MessageDecoder().push(bad), 'ERR_HANDOVER_CHECKSUM');
    }), { numRuns: 2000 });
  });

  it('a bit flip in the magic, version, length, id, index, flags or checksum field is refused with the code of the check that sees it', () => {
    // Magic, version and length are checked before the checksum; id, index and flags are covered by it.
    const fields: Array<[number, number, Code]> = [
      [0, 4, 'ERR_HANDOVER_MAGIC'], [4, 2, 'ERR_HANDOVER_VERSION'], [8, 4, 'ERR_HANDOVER_CHECKSUM'], [12, 2, 'ERR_HANDOVER_CHECKSUM'],
      [14, 2, 'ERR_HANDOVER_CHECKSUM'], [16, 4, 'ERR_HANDOVER_TRUNCATED'], [20, 4, 'ERR_HANDOVER_CHECKSUM'],
    ];
    fc.assert(fc.property(messageId, smallMessage, fc.constantFrom(...fields), fc.nat(), (id, m, [offset, width, code], bit) => {
      const [f] = encodeMessage(id, m);
      const bad = f!.slice();
      const b = bit % (8 * width);
      bad[offset + (b >> 3)]! ^= 1 << (b & 7);
      expectCode(() => new MessageDecoder().push(bad), code);
    }), { numRuns: 2000 });
  });

  it('a bit flip in the type field gives an unknown type or a checksum failure, never another valid message', () => {
    fc.assert(fc.property(messageId, smallMessage, fc.integer({ min: 0, max: 15 }), (id, m, bit) => {
      const [f] = encodeMessage(id, m);
      const bad = f!.slice();
      bad[6 + (bit >> 3)]! ^= 1 << (bit & 7);
      const flipped = new DataView(bad.buffer).getUint16(6, true);
      const e = caught(() => new MessageDecoder().push(bad));
      if (flipped < 1 || flipped > LAST_TYPE) {
        assert.ok(e instanceof HandoverError && e.code === 'ERR_HANDOVER_TYPE', String(e));
      } else {
        assert.ok(e instanceof HandoverError && e.code === 'ERR_HANDOVER_CHECKSUM', `type ${flipped}: ${String(e)}`);
      }
    }), { numRuns: 500 });
  });

  it('a bit flip anywhere in the header is refused', () => {
    fc.assert(fc.property(messageId, smallMessage, fc.integer({ min: 0, max: 8 * FRAME_HEADER_BYTES - 1 }), (id, m, bit) => {
      const [f] = encodeMessage(id, m);
      const bad = f!.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const d = new MessageDecoder();
      const e = caught(() => d.push(bad));
      assert.ok(e instanceof HandoverError, `flipping header bit ${bit} was accepted (partial: ${d.partial})`);
    }), { numRuns: 500 });
  });

  it('every single-bit header flip of every fragment of a multi-fragment message is refused, none completes a message', () => {
    const b = { vm: 'web-1' };
    const frames = encodeMessage(0x0102_0304, { type: MessageType.VmRunning, body: b, blob: blobForPayload(b, MAX_FRAGMENT_PAYLOAD + 50) });
    frames.forEach((f, i) => {
      for (let bit = 0; bit < 8 * FRAME_HEADER_BYTES; bit++) {
        const d = new MessageDecoder();
        if (i > 0) assert.equal(d.push(frames[0]!), undefined);
        const bad = f.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        const e = caught(() => d.push(bad));
        assert.ok(e instanceof HandoverError, `fragment ${i}, header bit ${bit}: accepted`);
      }
    });
  });

  it('a frame with a good checksum but unknown flag bits is refused', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 0xffff }), smallMessage, (flags, m) => {
      expectCode(() => new MessageDecoder().push(frame(payloadOf(m), { type: m.type, flags })), 'ERR_HANDOVER_FLAGS', /unknown flag bits/);
    }), { numRuns: 500 });
  });

  it('the checksum covers the header: the same payload with another id, type, index or flags has another CRC', () => {
    const p = payloadOf({ type: MessageType.Hello, body: { a: 1 }, blob: new Uint8Array(0) });
    const base = frame(p);
    const crcOf = (f: Uint8Array): number => new DataView(f.buffer).getUint32(20, true);
    for (const other of [frame(p, { id: 2 }), frame(p, { type: MessageType.Ready }), frame(p, { index: 1 }), frame(p, { flags: FLAG_MORE })]) {
      assert.notEqual(crcOf(other), crcOf(base));
    }
    assert.equal(crcOf(base), crc32c(base.subarray(FRAME_HEADER_BYTES), crc32c(base.subarray(0, 20))));
    assert.equal(crcOf(encodeMessage(1, { type: MessageType.Hello, body: { a: 1 }, blob: new Uint8Array(0) })[0]!), crcOf(base));
  });

  it('HandoverError has a name and keeps a cause', () => {
    const cause = new Error('inner');
    const e = new HandoverError('ERR_HANDOVER_BODY', 'outer', { cause });
    assert.equal(e.name, 'HandoverError');
    assert.equal(e.cause, cause);
    assert.equal(e.code, 'ERR_HANDOVER_BODY');
    assert.match(String(e), /^HandoverError: outer$/);
    assert.equal(new HandoverError('ERR_HANDOVER_TYPE', 'x').cause, undefined);
  });

  it('frames from a future (or zero) protocol version are refused, with a message naming both versions', () => {
    fc.assert(fc.property(fc.oneof(fc.constant(0), fc.integer({ min: PROTOCOL_VERSION + 1, max: 0xffff })), smallMessage, (version, m) => {
      const e = expectCode(() => new MessageDecoder().push(frame(payloadOf(m), { version, type: m.type })), 'ERR_HANDOVER_VERSION');
      assert.match(e.message, new RegExp(`protocol ${version}\\b`));
    }), { numRuns: 1000 });
  });

  it('zero and unknown message types are refused', () => {
    fc.assert(fc.property(fc.oneof(fc.constant(0), fc.integer({ min: LAST_TYPE + 1, max: 0xffff })), smallMessage, (type, m) => {
      expectCode(() => new MessageDecoder().push(frame(payloadOf(m), { type })), 'ERR_HANDOVER_TYPE', new RegExp(`type ${type}$`));
    }), { numRuns: 1000 });
    // Names of the enum are keys of the object too; a numeric type must never match them.
    expectCode(() => new MessageDecoder().push(frame(payloadOf({ type: 1, body: {}, blob: new Uint8Array(0) }), { type: 0 })), 'ERR_HANDOVER_TYPE');
  });
});

describe('protocol: fragment order', () => {
  const multi = fc.record({
    id: messageId, type: validType, fragments: fc.integer({ min: 2, max: 5 }),
  }).map(({ id, type, fragments }) => {
    const b = { n: fragments };
    const m = { type, body: b, blob: blobForPayload(b, (fragments - 1) * MAX_FRAGMENT_PAYLOAD + 10) };
    return { id, m, frames: encodeMessage(id, m) };
  });

  it('fragments out of order never make a message and are refused as a sequence error', () => {
    fc.assert(fc.property(multi.chain((x) => fc.tuple(fc.constant(x), fc.shuffledSubarray(x.frames.map((_, i) => i), {
      minLength: x.frames.length, maxLength: x.frames.length,
    }))), ([{ frames }, order]) => {
      fc.pre(order.some((v, i) => v !== i));
      const d = new MessageDecoder();
      let sequenceErrors = 0;
      for (const i of order) {
        const e = caught(() => assert.equal(d.push(frames[i]!), undefined, 'a message came out of shuffled fragments'));
        if (e === undefined) continue;
        assert.ok(e instanceof HandoverError && e.code === 'ERR_HANDOVER_SEQUENCE', String(e));
        assert.equal(d.partial, false, 'a sequence error leaves the decoder idle');
        sequenceErrors++;
      }
      assert.ok(sequenceErrors >= 1);
    }), { numRuns: 300 });
  });

  it('a continuation without a first fragment, a repeated fragment and a skipped fragment are sequence errors', () => {
    const b = {};
    const frames = encodeMessage(9, { type: MessageType.VmState, body: b, blob: blobForPayload(b, 3 * MAX_FRAGMENT_PAYLOAD) });
    expectCode(() => new MessageDecoder().push(frames[1]!), 'ERR_HANDOVER_SEQUENCE', /fragment 1 of message 9/);
    const d = new MessageDecoder();
    d.push(frames[0]!);
    expectCode(() => d.push(frames[0]!), 'ERR_HANDOVER_SEQUENCE');
    const d2 = new MessageDecoder();
    d2.push(frames[0]!);
    expectCode(() => d2.push(frames[2]!), 'ERR_HANDOVER_SEQUENCE');
  });

  it('interleaved messages are refused, and the decoder takes the next message whole', () => {
    fc.assert(fc.property(multi, multi, smallMessage, messageId, ({ id: idA, frames: a }, { frames: b }, next, nextId) => {
      const d = new MessageDecoder();
      assert.equal(d.push(a[0]!), undefined);
      // Another message's first fragment (or the same id with another type) while one is partial.
      expectCode(() => d.push(b[0]!), 'ERR_HANDOVER_SEQUENCE');
      assert.equal(d.partial, false);
      // The rest of the interrupted message is refused too, fragment by fragment.
      for (const f of a.slice(1)) expectCode(() => d.push(f), 'ERR_HANDOVER_SEQUENCE');
      assertSameMessage(decodeAll(encodeMessage(nextId, next), d), next);
      // And a message whose id only differs from the interrupted one is fine as well.
      assertSameMessage(decodeAll(encodeMessage(idA, next), d), next);
    }), { numRuns: 100 });
  });

  it('a fragment of the same id but another type is a sequence error', () => {
    const b = {};
    const frames = encodeMessage(5, { type: MessageType.VmState, body: b, blob: blobForPayload(b, 2 * MAX_FRAGMENT_PAYLOAD) });
    const d = new MessageDecoder();
    d.push(frames[0]!);
    const other = frames[1]!.slice();
    const ov = new DataView(other.buffer);
    ov.setUint16(6, MessageType.VmFailed, true);
    ov.setUint32(20, frameCrc(other), true); // a well-formed frame, just of the wrong type
    expectCode(() => d.push(other), 'ERR_HANDOVER_SEQUENCE');
  });

  it('a message growing past MAX_MESSAGE_BYTES is refused as oversized, then the decoder recovers', () => {
    const part = new Uint8Array(MAX_FRAGMENT_PAYLOAD);
    new DataView(part.buffer).setUint32(0, 2, true);
    part.set([0x7b, 0x7d], 4);
    const d = new MessageDecoder();
    const fragments = Math.ceil((MAX_MESSAGE_BYTES + 1) / MAX_FRAGMENT_PAYLOAD);
    for (let i = 0; i < fragments - 1; i++) {
      assert.equal(d.push(frame(part, { type: MessageType.VmState, id: 77, index: i, flags: FLAG_MORE })), undefined);
    }
    expectCode(() => d.push(frame(part, { type: MessageType.VmState, id: 77, index: fragments - 1, flags: FLAG_MORE })), 'ERR_HANDOVER_OVERSIZED');
    assert.equal(d.partial, false);
    const next = { type: MessageType.Ready, body: { ok: true }, blob: new Uint8Array([1]) };
    assertSameMessage(decodeAll(encodeMessage(78, next), d), next);
  });

  it('a frame claiming a huge payload but carrying a small one is truncated, not allocated', () => {
    expectCode(() => new MessageDecoder().push(frame(new Uint8Array(8), { length: 0xffffffff })), 'ERR_HANDOVER_TRUNCATED');
  });
});

describe('protocol: bodies', () => {
  it('bodies that are not valid UTF-8 are refused', () => {
    for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x7b, 0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80]]) {
      expectCode(() => new MessageDecoder().push(bodyFrame(new Uint8Array(bad))), 'ERR_HANDOVER_BODY', /UTF-8/);
    }
  });

  it('bodies that are not JSON, or JSON but not an object, are refused', () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    for (const s of ['', '{', '{"a":}', 'undefined', "{'a':1}", '{"a":1}x']) {
      expectCode(() => new MessageDecoder().push(bodyFrame(enc(s))), 'ERR_HANDOVER_BODY', /not valid JSON/);
    }
    for (const s of ['null', '[]', '[1,2]', '1', '"x"', 'true']) {
      expectCode(() => new MessageDecoder().push(bodyFrame(enc(s))), 'ERR_HANDOVER_BODY', /not a JSON object/);
    }
  });

  it('random body bytes give an object body or ERR_HANDOVER_BODY, nothing else', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.json().map((s) => new TextEncoder().encode(s))), (bytes) => {
      const d = new MessageDecoder();
      const e = caught(() => {
        const m = d.push(bodyFrame(bytes));
        assert.ok(m && typeof m.body === 'object' && m.body !== null && !Array.isArray(m.body));
      });
      assert.ok(e === undefined || (e instanceof HandoverError && e.code === 'ERR_HANDOVER_BODY'), String(e));
      assert.equal(d.partial, false);
    }), { numRuns: 1500 });
  });

  it('the body accessors return typed fields and name the message and field when one is wrong', () => {
    const m: Message = { type: MessageType.PrepareVm, body: { vm: 'a', memMib: 512, window: [1, 2], f: 1.5, big: 2 ** 60, r3: [1, 2, 3] }, blob: new Uint8Array(0) };
    assert.equal(str(m, 'vm'), 'a');
    assert.equal(int(m, 'memMib'), 512);
    assert.deepEqual(range(m, 'window'), [1, 2]);
    expectCode(() => str(m, 'memMib'), 'ERR_HANDOVER_BODY', /PrepareVm message: memMib must be a string/);
    expectCode(() => str(m, 'missing'), 'ERR_HANDOVER_BODY', /missing must be a string/);
    expectCode(() => int(m, 'f'), 'ERR_HANDOVER_BODY', /f must be an integer/);
    expectCode(() => int(m, 'big'), 'ERR_HANDOVER_BODY');
    expectCode(() => int(m, 'vm'), 'ERR_HANDOVER_BODY');
    expectCode(() => range(m, 'r3'), 'ERR_HANDOVER_BODY', /r3 must be \[min, max\]/);
    expectCode(() => range(m, 'vm'), 'ERR_HANDOVER_BODY');
    expectCode(() => range({ ...m, body: { w: [1, 'x'] } }, 'w'), 'ERR_HANDOVER_BODY');
  });
});
