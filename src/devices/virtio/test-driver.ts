// A minimal virtio-mmio guest driver over heap guest memory, for the device models' unit and
// property tests: it negotiates, sets up split queues, posts chains and reads used entries.
// Test support only; the real drivers are the guest kit's (guest/lib/virtio.c).

import { heapGuestMemory, type GuestMemory } from '../../memory/guest-memory.js';
import type { IrqLine } from '../device.js';
import { VirtioMmioTransport } from './mmio-transport.js';
import * as v from './virtio-abi.js';
import type { VirtioDevice } from './virtio-device.js';

/** Multiplies the property tests' case counts: SWAPVISOR_FUZZ_SCALE=10 for a long fuzz run. */
export const FUZZ_SCALE = Math.max(1, Number(process.env.SWAPVISOR_FUZZ_SCALE ?? '1') || 1);

export const TEST_RAM_BYTES = 1 << 20;
/** Ring memory per queue in the test RAM: queue i's descriptor table, avail and used rings. */
const RING_BASE = 0x10000;
const RING_STRIDE = 0x8000;
/** Buffers handed out by alloc() start here. */
const HEAP_BASE = 0x80000;

export interface Segment { addr: number; len: number; write?: boolean }

export class TestDriver<S> {
  readonly mem: GuestMemory = heapGuestMemory([{ start: 0, size: TEST_RAM_BYTES }]);
  interrupts = 0;
  readonly irq: IrqLine = { pulse: () => { this.interrupts++; }, setLevel: () => {} };
  transport: VirtioMmioTransport<S>;
  private heapNext = HEAP_BASE;
  private availIdx: number[] = [];
  private usedSeen: number[] = [];
  private nextDesc: number[] = [];

  constructor(device: VirtioDevice<S>, private readonly features: bigint = v.featureBit(v.VIRTIO_F_VERSION_1), private readonly queueSize = 16) {
    this.transport = new VirtioMmioTransport({ memory: this.mem, irq: this.irq }, device);
  }

  read32(offset: number): number {
    const b = new Uint8Array(4);
    this.transport.mmioRead(offset, b);
    return new DataView(b.buffer).getUint32(0, true);
  }

  write32(offset: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.transport.mmioWrite(offset, b);
  }

  get status(): number { return this.read32(v.VIRTIO_MMIO_STATUS); }

  /** §3.1.1 initialisation with `features` accepted; queues of `queueSize`. Returns the final status. */
  init(queueCount: number): number {
    this.write32(v.VIRTIO_MMIO_STATUS, 0);
    this.write32(v.VIRTIO_MMIO_STATUS, v.VIRTIO_CONFIG_S_ACKNOWLEDGE | v.VIRTIO_CONFIG_S_DRIVER);
    for (const sel of [0, 1]) {
      this.write32(v.VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
      this.write32(v.VIRTIO_MMIO_DRIVER_FEATURES, Number((this.features >> BigInt(32 * sel)) & 0xffffffffn));
    }
    this.write32(v.VIRTIO_MMIO_STATUS, v.VIRTIO_CONFIG_S_ACKNOWLEDGE | v.VIRTIO_CONFIG_S_DRIVER | v.VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(this.status & v.VIRTIO_CONFIG_S_FEATURES_OK)) return this.status;
    for (let q = 0; q < queueCount; q++) this.setupQueue(q);
    this.write32(v.VIRTIO_MMIO_STATUS, this.status | v.VIRTIO_CONFIG_S_DRIVER_OK);
    return this.status;
  }

  ringAddrs(q: number): { desc: number; avail: number; used: number } {
    const base = RING_BASE + q * RING_STRIDE;
    return { desc: base, avail: base + 0x1000, used: base + 0x2000 };
  }

  setupQueue(q: number, size = this.queueSize): void {
    const r = this.ringAddrs(q);
    this.write32(v.VIRTIO_MMIO_QUEUE_SEL, q);
    this.write32(v.VIRTIO_MMIO_QUEUE_NUM, size);
    this.write32(v.VIRTIO_MMIO_QUEUE_DESC_LOW, r.desc);
    this.write32(v.VIRTIO_MMIO_QUEUE_DRIVER_LOW, r.avail);
    this.write32(v.VIRTIO_MMIO_QUEUE_DEVICE_LOW, r.used);
    this.write32(v.VIRTIO_MMIO_QUEUE_READY, 1);
    this.availIdx[q] = 0;
    this.usedSeen[q] = 0;
    this.nextDesc[q] = 0;
  }

  /** A fresh buffer in guest RAM, optionally filled. */
  alloc(len: number, fill?: Uint8Array): number {
    const addr = this.heapNext;
    this.heapNext += (len + 15) & ~15;
    if (this.heapNext > TEST_RAM_BYTES) throw new Error('test RAM exhausted');
    if (fill) this.mem.write(addr, fill);
    return addr;
  }

  resetHeap(): void { this.heapNext = HEAP_BASE; }

  /** Posts one chain of direct descriptors and returns its head; does not notify. */
  post(q: number, segments: readonly Segment[]): number {
    const r = this.ringAddrs(q);
    const head = this.nextDesc[q]! % this.queueSize;
    segments.forEach((s, i) => {
      const idx = (head + i) % this.queueSize;
      const d = this.mem.view(r.desc + idx * 16, 16);
      d.setBigUint64(0, BigInt(s.addr), true);
      d.setUint32(8, s.len, true);
      d.setUint16(12, (i < segments.length - 1 ? v.VIRTQ_DESC_F_NEXT : 0) | (s.write ? v.VIRTQ_DESC_F_WRITE : 0), true);
      d.setUint16(14, (idx + 1) % this.queueSize, true);
    });
    this.nextDesc[q] = head + segments.length;
    const slot = this.availIdx[q]! % this.queueSize;
    this.mem.writeU16(r.avail + 4 + 2 * slot, head);
    this.availIdx[q] = (this.availIdx[q]! + 1) & 0xffff;
    this.mem.writeU16(r.avail + 2, this.availIdx[q]!);
    return head;
  }

  notify(q: number): void { this.write32(v.VIRTIO_MMIO_QUEUE_NOTIFY, q); }

  /** Used entries not yet seen, in order. */
  takeUsed(q: number): Array<{ id: number; len: number }> {
    const r = this.ringAddrs(q);
    const idx = this.mem.readU16(r.used + 2);
    const out: Array<{ id: number; len: number }> = [];
    while (this.usedSeen[q] !== idx) {
      const slot = this.usedSeen[q]! % this.queueSize;
      out.push({ id: this.mem.readU32(r.used + 4 + 8 * slot), len: this.mem.readU32(r.used + 8 + 8 * slot) });
      this.usedSeen[q] = (this.usedSeen[q]! + 1) & 0xffff;
    }
    return out;
  }
}
