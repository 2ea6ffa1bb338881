// Tests of the virtio-mmio transport: identification, feature negotiation (unoffered bits are
// refused), queue setup checks that set DEVICE_NEEDS_RESET, interrupts and save/restore; and a
// property test that no sequence of register accesses can throw out of the transport.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { VirtioRng } from './rng/device.js';
import { FUZZ_SCALE, TestDriver } from './test-driver.js';
import * as v from './virtio-abi.js';
import { VirtioMmioTransport } from './mmio-transport.js';

const rng = () => new VirtioRng({ source: { fill: (b) => b.fill(0xa5) } });

describe('virtio-mmio transport', () => {
  it('identifies itself as a version 2 device', () => {
    const d = new TestDriver(rng());
    assert.equal(d.read32(v.VIRTIO_MMIO_MAGIC_VALUE), v.VIRTIO_MMIO_MAGIC);
    assert.equal(d.read32(v.VIRTIO_MMIO_VERSION), 2);
    assert.equal(d.read32(v.VIRTIO_MMIO_DEVICE_ID), v.VIRTIO_ID_RNG);
    d.write32(v.VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert.equal(d.read32(v.VIRTIO_MMIO_DEVICE_FEATURES), 1, 'VERSION_1 is offered');
  });

  it('negotiates, activates and completes a request with an interrupt', () => {
    const d = new TestDriver(rng());
    const status = d.init(1);
    assert.ok(status & v.VIRTIO_CONFIG_S_DRIVER_OK);
    const buf = d.alloc(32);
    const head = d.post(0, [{ addr: buf, len: 32, write: true }]);
    d.notify(0);
    assert.deepEqual(d.takeUsed(0), [{ id: head, len: 32 }]);
    assert.equal(d.mem.readU8(buf + 31), 0xa5);
    assert.equal(d.interrupts, 1);
    assert.equal(d.read32(v.VIRTIO_MMIO_INTERRUPT_STATUS), v.VIRTIO_MMIO_INT_VRING);
    d.write32(v.VIRTIO_MMIO_INTERRUPT_ACK, v.VIRTIO_MMIO_INT_VRING);
    assert.equal(d.read32(v.VIRTIO_MMIO_INTERRUPT_STATUS), 0);
  });

  it('refuses FEATURES_OK for feature bits that were never offered', () => {
    const d = new TestDriver(rng(), v.featureBit(v.VIRTIO_F_VERSION_1) | v.featureBit(40));
    const status = d.init(1);
    assert.equal(status & v.VIRTIO_CONFIG_S_FEATURES_OK, 0);
    assert.equal(d.transport.metrics.refusedFeatures, 1);
  });

  it('refuses a driver without VERSION_1 (legacy is not supported)', () => {
    const d = new TestDriver(rng(), 0n);
    assert.equal(d.init(1) & v.VIRTIO_CONFIG_S_FEATURES_OK, 0);
  });

  it('sets NEEDS_RESET for a queue size that is not a power of two, until the driver resets', () => {
    const d = new TestDriver(rng(), v.featureBit(v.VIRTIO_F_VERSION_1), 3);
    const status = d.init(1);
    assert.ok(status & v.VIRTIO_CONFIG_S_NEEDS_RESET);
    assert.equal(d.transport.metrics.needsReset, 1);
    assert.ok(d.read32(v.VIRTIO_MMIO_INTERRUPT_STATUS) & v.VIRTIO_MMIO_INT_CONFIG);
    d.write32(v.VIRTIO_MMIO_STATUS, 0);
    assert.equal(d.status, 0);
  });

  it('sets NEEDS_RESET when a chain loops, and stops serving the queue', () => {
    const d = new TestDriver(rng());
    d.init(1);
    const r = d.ringAddrs(0);
    d.post(0, [{ addr: d.alloc(8), len: 8, write: true }]);
    d.mem.writeU16(r.desc + 12, v.VIRTQ_DESC_F_NEXT | v.VIRTQ_DESC_F_WRITE);
    d.mem.writeU16(r.desc + 14, 0);
    d.notify(0);
    assert.ok(d.status & v.VIRTIO_CONFIG_S_NEEDS_RESET);
    assert.deepEqual(d.takeUsed(0), []);
  });

  it('saves and restores mid-stream: the restored queue goes on where it stopped', () => {
    const d = new TestDriver(rng(), v.featureBit(v.VIRTIO_F_VERSION_1) | v.featureBit(v.VIRTIO_F_RING_EVENT_IDX));
    d.init(1);
    const a = d.alloc(16);
    d.post(0, [{ addr: a, len: 16, write: true }]);
    d.notify(0);
    assert.equal(d.takeUsed(0).length, 1);
    // The guest posts a buffer, but the VM is saved before the device sees the notification.
    const b = d.alloc(16);
    const head = d.post(0, [{ addr: b, len: 16, write: true }]);
    const state = structuredClone(d.transport.saveState());
    const device = VirtioRng.restore({ source: { fill: (x) => x.fill(0x5a) } }, state.device);
    d.transport = VirtioMmioTransport.restore({ memory: d.mem, irq: d.irq }, device, state);
    d.transport.kickAll();
    assert.deepEqual(d.takeUsed(0), [{ id: head, len: 16 }], 'completed exactly once by the new transport');
    assert.equal(d.mem.readU8(b), 0x5a);
    d.transport.kickAll();
    assert.deepEqual(d.takeUsed(0), [], 'a second kick does nothing twice');
  });

  it('re-asserts an unacknowledged interrupt after a restore', () => {
    const d = new TestDriver(rng());
    d.init(1);
    d.post(0, [{ addr: d.alloc(8), len: 8, write: true }]);
    d.notify(0);
    const before = d.interrupts;
    d.transport.reassertInterrupt();
    assert.equal(d.interrupts, before + 1);
    d.write32(v.VIRTIO_MMIO_INTERRUPT_ACK, v.VIRTIO_MMIO_INT_VRING);
    d.transport.reassertInterrupt();
    assert.equal(d.interrupts, before + 1, 'nothing pending: no interrupt');
  });

  it('refuses malformed saved state with a clear error', () => {
    const d = new TestDriver(rng());
    d.init(1);
    const good = d.transport.saveState();
    for (const bad of [{ ...good, queues: [] }, { ...good, status: 300 }, { ...good, deviceType: 2 }, { ...good, queues: [{ ...good.queues[0]!, nextAvail: -1 }] }]) {
      assert.throws(() => VirtioMmioTransport.restore({ memory: d.mem, irq: d.irq }, rng(), bad), /virtio-mmio.*state field/);
    }
  });

  it('property: no sequence of register reads and writes throws out of the transport', () => {
    const access = fc.record({
      write: fc.boolean(),
      offset: fc.oneof(fc.constantFrom(0, 4, 8, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34, 0x38, 0x44, 0x50, 0x60, 0x64, 0x70, 0x80, 0x84, 0x90, 0x94, 0xa0, 0xa4, 0xfc, 0x100), fc.integer({ min: 0, max: 0x1000 })),
      width: fc.constantFrom(1, 2, 4, 8),
      value: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 2, 3, 0xf, 0x10000, 0x12000, 0x11000)),
    });
    fc.assert(fc.property(fc.array(access, { maxLength: 40 }), (ops) => {
      const d = new TestDriver(rng());
      for (const op of ops) {
        const b = new Uint8Array(op.width);
        if (op.width >= 4) new DataView(b.buffer).setUint32(0, op.value, true);
        if (op.write) d.transport.mmioWrite(op.offset, b);
        else d.transport.mmioRead(op.offset, b);
      }
      d.transport.kickAll();
      structuredClone(d.transport.saveState());
    }), { numRuns: 10_000 * FUZZ_SCALE });
  });
});
