// One timer that drains the console output of many machines: KVM's coalesced ring and the native
// queue behind it (src/sys/pio-queue.ts) fill without any exit to this thread.

/**
 * One timer that drains the console queues of many machines, for guests that write to the console
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
