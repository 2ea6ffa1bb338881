// A split virtqueue as the device sees it (virtio 1.2 §2.7): the driver's setup (size and the
// three ring addresses), the device's position in the available ring, the used ring it fills,
// and the EVENT_IDX notification rules (§2.7.7, §2.7.10). Chains are parsed by descriptor-chain.ts.

import type { GuestMemory } from '../../memory/guest-memory.js';
import { type DescriptorChain, DESCRIPTOR_SIZE, VirtqueueError, parseDescriptorChain } from './descriptor-chain.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT } from './virtio-abi.js';

/** What the driver wrote through the transport, plus the device's ring positions. Plain data. */
export interface QueueState {
  size: number;
  ready: boolean;
  /** Guest physical addresses of the descriptor table, the available ring and the used ring. */
  descAddr: number;
  driverAddr: number;
  deviceAddr: number;
  /** Free-running 16-bit positions: the next available entry to take, the next used entry to fill. */
  nextAvail: number;
  nextUsed: number;
  /** The used index when the driver was last notified (EVENT_IDX). */
  signalledUsed: number;
}

export function initialQueueState(maxSize: number): QueueState {
  return { size: maxSize, ready: false, descAddr: 0, driverAddr: 0, deviceAddr: 0, nextAvail: 0, nextUsed: 0, signalledUsed: 0 };
}

const wrap16 = (v: number): number => v & 0xffff;

// Layout of the rings (queue size n):
//   available (driver area, align 2): 0 u16 flags | 2 u16 idx | 4 u16 ring[n] | 4+2n u16 used_event
//   used (device area, align 4):      0 u16 flags | 2 u16 idx | 4 {u32 id, u32 len}[n] | 4+8n u16 avail_event
export class Virtqueue {
  private readonly s: QueueState;

  constructor(private readonly mem: GuestMemory, state: QueueState, private readonly eventIdx: boolean) {
    this.s = { ...state };
    Virtqueue.check(mem, this.s);
  }

  /** Checks a queue the driver marks ready: power-of-two size, aligned rings inside guest RAM. */
  static check(mem: GuestMemory, s: QueueState): void {
    const n = s.size;
    if (n === 0 || n > 0x8000 || (n & (n - 1)) !== 0) throw new VirtqueueError('bad-queue', `queue size ${n} is not a power of two up to 32768`);
    if (s.descAddr % 16 || s.driverAddr % 2 || s.deviceAddr % 4) throw new VirtqueueError('bad-queue', 'a ring address is misaligned');
    const rings: Array<[string, number, number]> = [
      ['descriptor table', s.descAddr, DESCRIPTOR_SIZE * n], ['available ring', s.driverAddr, 6 + 2 * n], ['used ring', s.deviceAddr, 6 + 8 * n],
    ];
    for (const [what, addr, len] of rings) {
      if (!mem.checkRange(addr, len)) throw new VirtqueueError('out-of-range', `the ${what} at 0x${addr.toString(16)} is not inside guest RAM`);
    }
  }

  get state(): QueueState { return { ...this.s }; }
  get size(): number { return this.s.size; }

  private u16(addr: number): Uint16Array {
    const b = this.mem.slice(addr, 2);
    return new Uint16Array(b.buffer, b.byteOffset, 1);
  }

  /** The driver's available index, read with a full barrier before the ring entries behind it. */
  private availIdx(): number {
    return Atomics.load(this.u16(this.s.driverAddr + 2), 0);
  }

  /** How many chains the driver has made available that the device has not taken. */
  pending(): number {
    const n = wrap16(this.availIdx() - this.s.nextAvail);
    if (n > this.s.size) throw new VirtqueueError('bad-avail-index', `the driver made ${n} buffers available on a queue of ${this.s.size}`);
    return n;
  }

  /** Takes the next available chain, or undefined if there is none. Throws VirtqueueError if it is malformed. */
  pop(): DescriptorChain | undefined {
    if (this.pending() === 0) return undefined;
    const slot = this.s.nextAvail % this.s.size;
    const head = this.mem.readU16(this.s.driverAddr + 4 + 2 * slot);
    this.s.nextAvail = wrap16(this.s.nextAvail + 1);
    return parseDescriptorChain(this.mem, this.s.descAddr, this.s.size, head);
  }

  /** Gives back the chain pop() just returned, untouched (e.g. a packet did not fit; try later). */
  undoPop(): void {
    this.s.nextAvail = wrap16(this.s.nextAvail - 1);
  }

  /** Returns a chain to the driver with `len` bytes written into its writable buffers. */
  pushUsed(head: number, len: number): void {
    const slot = this.s.nextUsed % this.s.size;
    const entry = this.mem.view(this.s.deviceAddr + 4 + 8 * slot, 8);
    entry.setUint32(0, head, true);
    entry.setUint32(4, len, true);
    this.s.nextUsed = wrap16(this.s.nextUsed + 1);
    // Ordering requirements: the entry is visible before the index that publishes it.
    Atomics.store(this.u16(this.s.deviceAddr + 2), 0, this.s.nextUsed);
  }

  /**
   * With EVENT_IDX, tells the driver to notify once it adds past what the device has taken, and
   * returns true if more arrived meanwhile (the caller processes again). Without it, false.
   */
  armNotification(): boolean {
    if (!this.eventIdx) return false;
    Atomics.store(this.u16(this.s.deviceAddr + 4 + 8 * this.s.size), 0, this.s.nextAvail);
    return this.pending() > 0;
  }

  /** Whether the driver wants an interrupt for the used entries added since the last one (§2.7.10). */
  needsInterrupt(): boolean {
    const used = this.s.nextUsed;
    if (!this.eventIdx) {
      const flags = Atomics.load(this.u16(this.s.driverAddr), 0);
      return (flags & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0 && used !== this.s.signalledUsed ? this.markSignalled() : false;
    }
    const usedEvent = Atomics.load(this.u16(this.s.driverAddr + 4 + 2 * this.s.size), 0);
    const old = this.s.signalledUsed;
    this.s.signalledUsed = used;
    // vring_need_event: the driver asked to hear once the used index passes used_event.
    return wrap16(used - usedEvent - 1) < wrap16(used - old);
  }

  private markSignalled(): true {
    this.s.signalledUsed = this.s.nextUsed;
    return true;
  }
}
