// A VM's console output queue (native/src/pio_queue.c): the guest's writes to one port that KVM
// queued in its coalesced ring, continued by the vCPU threads in a larger native queue when the ring
// is full. The guest never waits for this thread to print; this thread takes the bytes in order.

import { type PioQueueHandle, native } from './native.js';

/** The size of struct kvm_coalesced_mmio_ring's page. */
export const RING_PAGE_BYTES = 4096;

const NOTHING = new Uint8Array(0);

export class PioQueue {
  readonly handle: PioQueueHandle;
  /** Bytes in the native queue, kept up to date by the addon. */
  private readonly queued = new Int32Array(1);
  /** struct kvm_coalesced_mmio_ring: 0 u32 first (userspace advances) | 4 u32 last (the kernel advances). */
  private readonly ring: DataView;
  private closed = false;

  /**
   * @param ringPage the VM's coalesced MMIO/PIO ring page (inside vCPU 0's kvm_run mapping), with
   *   exactly one zone registered: 1 byte at `port`, pio.
   * @param capacity bytes the queue holds beyond the ring before exits go to this thread again.
   */
  constructor(ringPage: Uint8Array, readonly port: number, capacity: number) {
    this.handle = native().pioQueueCreate(ringPage, port, capacity, this.queued);
    this.ring = new DataView(ringPage.buffer, ringPage.byteOffset, 8);
  }

  /**
   * Every byte written so far and not yet taken, oldest first. This runs before every exit the main
   * thread handles: when the ring and the queue are both empty it does not call the addon.
   */
  take(): Uint8Array {
    if (this.closed) return NOTHING;
    if (this.ring.getUint32(0, true) === this.ring.getUint32(4, true) && Atomics.load(this.queued, 0) === 0) return NOTHING;
    return native().pioQueueTake(this.handle);
  }

  /** Forgets the ring page before it is unmapped: take what is queued first. Afterwards take returns nothing. */
  close(): void {
    this.closed = true;
    native().pioQueueClose(this.handle);
  }

  /** Bytes waiting in the native queue (not counting the ring), and ring entries skipped as not ours. */
  stats(): { queued: number; skipped: number } {
    const [queued, skipped] = native().pioQueueStats(this.handle);
    return { queued, skipped };
  }
}
