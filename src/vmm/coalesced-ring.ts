// Drains KVM's coalesced MMIO/PIO ring: guest writes to registered ranges that KVM queued in a
// shared page instead of exiting to userspace. Reference: api.rst, KVM_REGISTER_COALESCED_MMIO.
//
// Layout of struct kvm_coalesced_mmio_ring (one page, shared with the kernel):
//   0 u32 first (userspace advances) | 4 u32 last (kernel advances) | 8 entries[]
// struct kvm_coalesced_mmio (24 bytes):
//   0 u64 phys_addr (the port for PIO) | 8 u32 len | 12 u32 pio | 16 u8 data[8]

const PAGE_SIZE = 4096;
const ENTRY_SIZE = 24;
const RING_MAX = Math.floor((PAGE_SIZE - 8) / ENTRY_SIZE);

export type CoalescedWrite = (isPio: boolean, address: number, data: Uint8Array) => void;

export class CoalescedRing {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;

  constructor(page: Uint8Array) {
    this.bytes = page;
    this.view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  }

  /** Hands every queued write, oldest first, to `sink`. Returns how many there were. */
  drain(sink: CoalescedWrite): number {
    let first = this.view.getUint32(0, true);
    const last = this.view.getUint32(4, true);
    let n = 0;
    // INVARIANT: indexes come from the kernel, which keeps them < RING_MAX; guard anyway.
    while (first !== last && first < RING_MAX && n < RING_MAX) {
      const o = 8 + first * ENTRY_SIZE;
      const address = Number(this.view.getBigUint64(o, true));
      const len = Math.min(this.view.getUint32(o + 8, true), 8);
      const isPio = this.view.getUint32(o + 12, true) !== 0;
      sink(isPio, address, this.bytes.subarray(o + 16, o + 16 + len));
      first = (first + 1) % RING_MAX;
      n++;
    }
    this.view.setUint32(0, first, true);
    return n;
  }
}

/**
 * One timer that drains the coalesced rings of many machines, for guests that write to the console
 * and then never exit to userspace. An instance with a hundred VMs needs one timer, not a hundred.
 */
export class RingPoller {
  private readonly drains = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs = 20) {}

  add(drain: () => void): void {
    this.drains.add(drain);
    if (!this.timer) {
      this.timer = setInterval(() => { for (const d of this.drains) d(); }, this.intervalMs);
      this.timer.unref();
    }
  }

  remove(drain: () => void): void {
    this.drains.delete(drain);
    if (this.drains.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
