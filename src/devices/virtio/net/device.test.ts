// virtio-net over an in-memory back-end: transmit strips the virtio header, receive adds it and
// only takes a frame from the back-end when the guest has a buffer for it (so frames wait in the
// tap queue, never in the device); malformed transmit chains are dropped and counted.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FUZZ_SCALE, TestDriver } from '../test-driver.js';
import { RX_QUEUE, TX_QUEUE, VirtioNet } from './device.js';
import { type NetBackend, VIRTIO_NET_HDR_SIZE } from './queue-handler.js';

class QueueBackend implements NetBackend {
  readonly inbound: Uint8Array[] = [];
  readonly sent: Uint8Array[] = [];
  interest = false;
  read(buf: Uint8Array): number {
    const f = this.inbound.shift();
    if (!f) return -1;
    buf.set(f);
    return f.byteLength;
  }
  write(frame: Uint8Array): boolean { this.sent.push(frame.slice()); return true; }
  setReadInterest(on: boolean): void { this.interest = on; }
}

const frame = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

function setup() {
  const backend = new QueueBackend();
  const dev = new VirtioNet({ backend, mac: '02:00:00:00:00:2a' });
  const d = new TestDriver(dev, undefined, 16);
  d.init(2);
  return { backend, dev, d };
}

describe('virtio-net', () => {
  it('exposes its MAC and link status', () => {
    const { d } = setup();
    assert.equal(d.read32(0x100), 0x00_00_02 | 0x00 << 24);
    const b = new Uint8Array(2);
    d.transport.mmioRead(0x104, b);
    assert.deepEqual([...b], [0x00, 0x2a]);
  });

  it('transmits a frame without its virtio header', () => {
    const { backend, d } = setup();
    const f = frame(60, 1);
    const hdr = new Uint8Array(VIRTIO_NET_HDR_SIZE);
    d.post(TX_QUEUE, [{ addr: d.alloc(12, hdr), len: 12 }, { addr: d.alloc(60, f), len: 60 }]);
    d.notify(TX_QUEUE);
    assert.deepEqual(backend.sent, [f]);
    assert.equal(d.takeUsed(TX_QUEUE).length, 1);
  });

  it('keeps frames in the back-end until the guest posts receive buffers', () => {
    const { backend, dev, d } = setup();
    backend.inbound.push(frame(100, 2), frame(200, 3));
    dev.backendReadable();
    assert.equal(backend.inbound.length, 2, 'no buffer: nothing taken');
    assert.equal(backend.interest, false, 'stops listening until buffers come');
    const buf = d.alloc(2048);
    d.post(RX_QUEUE, [{ addr: buf, len: 2048, write: true }]);
    d.notify(RX_QUEUE);
    assert.equal(backend.inbound.length, 1);
    const used = d.takeUsed(RX_QUEUE);
    assert.deepEqual(used.map((u) => u.len), [112]);
    assert.deepEqual(d.mem.read(buf + 12, 100), frame(100, 2));
    assert.equal(d.mem.readU16(buf + 10), 1, 'num_buffers');
  });

  it('drops malformed transmit chains and counts them', () => {
    const { backend, dev, d } = setup();
    d.post(TX_QUEUE, [{ addr: d.alloc(8), len: 8 }]);
    d.notify(TX_QUEUE);
    assert.equal(backend.sent.length, 0);
    assert.equal(dev.metrics.txMalformed, 1);
  });

  it('property: every inbound frame is delivered once, in order, whatever the buffer sizes', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 14, max: 1500 }), { maxLength: 20 }), fc.array(fc.integer({ min: 12, max: 2048 }), { maxLength: 30 }), (sizes, bufs) => {
      const { backend, dev, d } = setup();
      sizes.forEach((n, i) => backend.inbound.push(frame(n, i)));
      const got: number[] = [];
      for (const [i, len] of bufs.entries()) {
        if (i % 16 === 15) d.resetHeap();
        d.post(RX_QUEUE, [{ addr: d.alloc(len), len, write: true }]);
        d.notify(RX_QUEUE);
        dev.backendReadable();
        for (const u of d.takeUsed(RX_QUEUE)) got.push(u.len);
      }
      const delivered = got.filter((l) => l > 0).length + dev.metrics.rxDropped;
      assert.equal(delivered + backend.inbound.length, sizes.length, 'no frame lost inside the device');
      assert.equal(delivered, got.length);
    }), { numRuns: 3_000 * FUZZ_SCALE });
  });
});
