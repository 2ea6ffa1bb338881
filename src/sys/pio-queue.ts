// A VM's console output queue (native/src/pio_queue.c): the guest's writes to one port that KVM
// queued in its coalesced ring, continued by the vCPU threads in a larger native queue when the ring
// is full. The guest never waits for this thread to print; this thread takes the bytes in order.

import { type PioQueueHandle, native } from './native.js';

/** The size of struct kvm_coalesced_mmio_ring's page. */
export const RING_PAGE_BYTES = 4096;

export class PioQueue {
  readonly handle: PioQueueHandle;

  /**
   * @param ringPage the VM's coalesced MMIO/PIO ring page (inside vCPU 0's kvm_run mapping), with
   *   exactly one zone registered: 1 byte at `port`, pio.
   * @param capacity bytes the queue holds beyond the ring before exits go to this thread again.
   */
  constructor(ringPage: Uint8Array, readonly port: number, capacity: number) {
    this.handle = native().pioQueueCreate(ringPage, port, capacity);
  }

  /** Every byte written so far and not yet taken, oldest first. */
  take(): Uint8Array { return native().pioQueueTake(this.handle); }

  /** Forgets the ring page before it is unmapped: take what is queued first. Afterwards take returns nothing. */
  close(): void { native().pioQueueClose(this.handle); }

  /** Bytes waiting in the native queue (not counting the ring), and ring entries skipped as not ours. */
  stats(): { queued: number; skipped: number } {
    const [queued, skipped] = native().pioQueueStats(this.handle);
    return { queued, skipped };
  }
}
