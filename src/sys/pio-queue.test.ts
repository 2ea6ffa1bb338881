import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PioQueue, RING_PAGE_BYTES } from './pio-queue.js';

// A fake struct kvm_coalesced_mmio_ring page: the test plays the kernel's part (the producer).
const RING_MAX = Math.floor((RING_PAGE_BYTES - 8) / 24);
const PORT = 0x3f8;

class FakeRing {
  readonly page = new Uint8Array(RING_PAGE_BYTES);
  private readonly v = new DataView(this.page.buffer);

  get free(): number { return RING_MAX - 1 - ((this.last + RING_MAX - this.first) % RING_MAX); }
  get first(): number { return this.v.getUint32(0, true); }
  get last(): number { return this.v.getUint32(4, true); }

  /** Queues one write the way KVM does; false when the ring is full (KVM would exit instead). */
  write(byte: number, entry: { port?: number; len?: number; pio?: number } = {}): boolean {
    if (this.free === 0) return false;
    const o = 8 + this.last * 24;
    this.v.setBigUint64(o, BigInt(entry.port ?? PORT), true);
    this.v.setUint32(o + 8, entry.len ?? 1, true);
    this.v.setUint32(o + 12, entry.pio ?? 1, true);
    this.page[o + 16] = byte;
    this.v.setUint32(4, (this.last + 1) % RING_MAX, true);
    return true;
  }
}

test('take returns the queued writes oldest first, across the ring wrapping, and empties it', () => {
  const ring = new FakeRing();
  const q = new PioQueue(ring.page, PORT, 1024);
  const sent: number[] = [];
  const got: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 100; i++) {
      const b = (round * 100 + i) & 0xff;
      assert.ok(ring.write(b));
      sent.push(b);
    }
    got.push(...q.take());
    assert.equal(ring.first, ring.last);
  }
  assert.deepEqual(got, sent);
  assert.equal(q.take().length, 0);
});

test('entries that are not 1-byte port writes to the queue\'s port are skipped and counted', () => {
  const ring = new FakeRing();
  const q = new PioQueue(ring.page, PORT, 64);
  ring.write(0x61);
  ring.write(0x62, { port: 0x3f9 });
  ring.write(0x63, { len: 2 });
  ring.write(0x64, { pio: 0 });
  ring.write(0x65);
  assert.deepEqual([...q.take()], [0x61, 0x65]);
  assert.equal(q.stats().skipped, 3);
});

test('any interleaving of kernel writes and takes delivers every byte once, in order', () => {
  fc.assert(fc.property(fc.array(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.constant('take' as const)), { maxLength: 40 }), (ops) => {
    const ring = new FakeRing();
    const q = new PioQueue(ring.page, PORT, 37);
    const sent: number[] = [];
    const got: number[] = [];
    for (const op of ops) {
      if (op === 'take') got.push(...q.take());
      else for (const b of op) if (ring.write(b)) sent.push(b);
    }
    got.push(...q.take());
    assert.deepEqual(got, sent);
  }), { numRuns: 500 });
});

test('a page of garbage (indexes out of range, any entries) never hangs, throws or over-reads', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: RING_PAGE_BYTES, maxLength: RING_PAGE_BYTES }), (bytes) => {
    const page = new Uint8Array(RING_PAGE_BYTES);
    page.set(bytes);
    const out = new PioQueue(page, PORT, 16).take();
    assert.ok(out.length < RING_MAX);
  }), { numRuns: 2000 });
});

test('bad arguments get one clear TypeError', () => {
  assert.throws(() => new PioQueue(new Uint8Array(100), PORT, 16), /pioQueueCreate/);
  assert.throws(() => new PioQueue(new Uint8Array(RING_PAGE_BYTES), 70000, 16), /pioQueueCreate/);
  assert.throws(() => new PioQueue(new Uint8Array(RING_PAGE_BYTES), PORT, 0), /pioQueueCreate/);
});

test('after close, take returns nothing and never touches the page again', () => {
  const ring = new FakeRing();
  const q = new PioQueue(ring.page, PORT, 16);
  ring.write(0x41);
  assert.deepEqual([...q.take()], [0x41]);
  ring.write(0x42);
  q.close();
  assert.equal(q.take().length, 0);
  assert.equal(ring.first, 1, 'the ring was not read after the close');
});
