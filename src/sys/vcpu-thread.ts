// A native thread that runs KVM_RUN for one vCPU when asked, and reports each return on the
// main thread. See native/src/vcpu_thread.c for the kick protocol.

import { type VcpuThreadHandle, native } from './native.js';
import type { PioQueue } from './pio-queue.js';

/** Result of one KVM_RUN: 0 on an exit to handle, or a negative errno (-EINTR after a kick). */
export type RunResult = number;

export const EINTR = 4;
export const EAGAIN = 11;
export const EFAULT = 14;

export class VcpuThread {
  private handle: VcpuThreadHandle | undefined;

  constructor(vcpuFd: number, onExit: (result: RunResult) => void) {
    this.handle = native().vcpuThreadCreate(vcpuFd, onExit);
  }

  private get live(): VcpuThreadHandle {
    if (!this.handle) throw new Error('vCPU thread used after destroy');
    return this.handle;
  }

  /** Enters KVM_RUN once on the vCPU thread. */
  run(): void { native().vcpuThreadRun(this.live); }

  /** Interrupts KVM_RUN (or makes the next one return at once). */
  kick(): void { native().vcpuThreadKick(this.live); }

  /**
   * From now on the thread itself answers 1-byte reads of `port` with `value[0]` while that is 0..255
   * (write -1 there to send them to onExit again), without waking the main thread. Once, before run().
   * INVARIANT: `run` is this vCPU's kvm_run mapping and outlives the thread; the addon keeps both alive.
   */
  setFastPioIn(run: Uint8Array, port: number, value: Int32Array): void { native().vcpuThreadSetFastPioIn(this.live, run, port, value); }

  /**
   * From now on the thread itself queues 1-byte OUT exits to the queue's port (KVM's coalesced ring
   * for it was full) while the queue has room. Once, after setFastPioIn and before run().
   */
  setPioQueue(queue: PioQueue): void { native().vcpuThreadSetPioQueue(this.live, queue.handle); }

  /** How many exits the thread answered by itself. */
  get fastExits(): number { return this.handle ? native().vcpuThreadFastExits(this.handle) : 0; }

  /** The Linux thread id, for sched_setaffinity. */
  get tid(): number { return native().vcpuThreadTid(this.live); }

  destroy(): void {
    if (this.handle) {
      native().vcpuThreadDestroy(this.handle);
      this.handle = undefined;
    }
  }
}
