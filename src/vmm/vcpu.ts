// One vCPU: its fd, the native thread blocked in KVM_RUN, and the exit loop that hands port and
// MMIO accesses to the VM's buses. The loop runs on the main thread, one exit at a time.
//
// Pausing (all vCPUs quiescent, no half-done I/O): set kvm_run.immediate_exit and kick the thread.
// If KVM_RUN had returned with a port or MMIO exit, that access is completed by one more KVM_RUN
// with immediate_exit set, which finishes the instruction and returns EINTR without running on.

import * as abi from '../sys/kvm-abi.js';
import type { VcpuFd } from '../sys/kvm.js';
import { EINTR, EAGAIN, VcpuThread } from '../sys/vcpu-thread.js';
import { setAffinity, setFairScheduling } from '../sys/affinity.js';
import type { PioQueue } from '../sys/pio-queue.js';
import { setPriority } from 'node:os';

/**
 * Nice value of vCPU threads: the main thread's, 0. Measured here: below it (nice 5), a hot swap's
 * busy main threads showed up as 4-20 ms stalls in the guests of their CPU; above it (nice -5),
 * virtio I/O lost 15% (its device work waits behind the guest); level, with the short slice below,
 * both were good. A guest computing flat out gets half of a shared CPU, the main thread the other.
 */
export const VCPU_THREAD_NICE = 0;
/**
 * The time slice vCPU threads ask for (the kernel's minimum, 0.1 ms; EEVDF gives the earlier
 * deadline to the shorter slice): a vCPU woken by its timer runs at once even while the main thread
 * works, and a vCPU that computes hands the CPU back often.
 */
export const VCPU_THREAD_SLICE_NS = 100_000;
import { type VcpuFault, describeFatalExit } from './exits.js';

export interface VcpuIo {
  pioRead(port: number, data: Uint8Array): void;
  pioWrite(port: number, data: Uint8Array): void;
  mmioRead(address: number, data: Uint8Array): void;
  mmioWrite(address: number, data: Uint8Array): void;
  /** Called before every exit is handled, so queued (coalesced) writes keep their order. */
  beforeExit(): void;
  /** The vCPU cannot go on; it is left stopped. */
  fault(fault: VcpuFault): void;
}

export type VcpuRunState = 'idle' | 'running' | 'pausing' | 'paused' | 'stopped';

export interface VcpuCounters {
  exits: number;
  ioExits: number;
  mmioExits: number;
  kicks: number;
}

export class Vcpu {
  private readonly thread: VcpuThread;
  private readonly run: DataView;
  private runState: VcpuRunState = 'idle';
  private pauseWaiters: Array<() => void> = [];
  readonly counters: VcpuCounters = { exits: 0, ioExits: 0, mmioExits: 0, kicks: 0 };

  constructor(readonly fd: VcpuFd, private readonly io: VcpuIo) {
    this.run = new DataView(fd.run.buffer, fd.run.byteOffset, fd.run.byteLength);
    this.thread = new VcpuThread(fd.fd, (result) => this.onRunReturn(result));
    // See VCPU_THREAD_NICE and VCPU_THREAD_SLICE_NS.
    try {
      setFairScheduling(this.thread.tid, VCPU_THREAD_NICE, VCPU_THREAD_SLICE_NS);
    } catch {
      try {
        setPriority(this.thread.tid, VCPU_THREAD_NICE); // a kernel without sched_setattr
      } catch {
        // not permitted (unprivileged): run at the default priority
      }
    }
  }

  get id(): number { return this.fd.id; }
  get state(): VcpuRunState { return this.runState; }
  get tid(): number { return this.thread.tid; }

  pin(cpus: readonly number[]): void { setAffinity(this.thread.tid, cpus); }

  /** See VcpuThread.setFastPioIn: 1-byte reads of `port` answered from `value[0]` on the vCPU thread. */
  enableFastPioIn(port: number, value: Int32Array): void { this.thread.setFastPioIn(this.fd.run, port, value); }

  /** See VcpuThread.setPioQueue: writes the full coalesced ring sent out go to `queue` on the vCPU thread. */
  enablePioQueue(queue: PioQueue): void { this.thread.setPioQueue(queue); }

  /** Exits to userspace, those the vCPU thread answered by itself included. */
  get exitsTotal(): number { return this.counters.exits + (this.finalFastExits ?? this.thread.fastExits); }
  private finalFastExits: number | undefined;

  /**
   * Starts (or resumes) running the guest. With `paused` the pause is asked for up front: KVM_RUN
   * returns at once without running the guest, and pause() resolves when it has.
   */
  start(opts: { paused?: boolean } = {}): void {
    if (this.runState !== 'idle' && this.runState !== 'paused') throw new Error(`cannot start vCPU ${this.id} while ${this.runState}`);
    this.run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, opts.paused ? 1 : 0);
    this.runState = opts.paused ? 'pausing' : 'running';
    this.thread.run();
  }

  /** Resolves once the vCPU is out of KVM_RUN with no access half done. */
  pause(): Promise<void> {
    if (this.runState === 'paused' || this.runState === 'idle' || this.runState === 'stopped') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.pauseWaiters.push(resolve));
    if (this.runState === 'running') {
      this.runState = 'pausing';
      this.run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, 1);
      this.counters.kicks++;
      this.thread.kick();
    }
    return done;
  }

  /** Joins the thread. The vCPU fd stays open; the caller closes it. */
  destroy(): void {
    this.runState = 'stopped';
    this.finalFastExits ??= this.thread.fastExits;
    this.thread.destroy();
    this.settlePause();
  }

  private settlePause(): void {
    const waiters = this.pauseWaiters;
    this.pauseWaiters = [];
    for (const w of waiters) w();
  }

  private reenter(): void {
    if (this.runState === 'running' || this.runState === 'pausing') this.thread.run();
  }

  private onRunReturn(result: number): void {
    if (this.runState === 'stopped') return;
    this.io.beforeExit();
    if (result === -EINTR || result === -EAGAIN) {
      if (this.runState === 'pausing') {
        this.run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, 0);
        this.runState = 'paused';
        this.settlePause();
      } else {
        this.reenter();
      }
      return;
    }
    if (result < 0) {
      this.stopWith({ kind: 'run-error', vcpu: this.id, rip: this.safeRip(), detail: `KVM_RUN failed with errno ${-result}` });
      return;
    }
    this.counters.exits++;
    const reason = this.run.getUint32(abi.KVM_RUN_EXIT_REASON, true);
    switch (reason) {
      case abi.KVM_EXIT_IO:
        this.counters.ioExits++;
        this.handleIo();
        break;
      case abi.KVM_EXIT_MMIO:
        this.counters.mmioExits++;
        this.handleMmio();
        break;
      case abi.KVM_EXIT_INTR:
      case abi.KVM_EXIT_HLT:
      case abi.KVM_EXIT_IRQ_WINDOW_OPEN:
        break;
      default:
        this.stopWith(describeFatalExit(this.run, this.id, this.safeRip()));
        return;
    }
    this.reenter();
  }

  // Layout of kvm_run.io at KVM_RUN_EXIT_DATA:
  //   0 u8 direction | 1 u8 size | 2 u16 port | 4 u32 count | 8 u64 data_offset (into the kvm_run mapping)
  private handleIo(): void {
    const d = abi.KVM_RUN_EXIT_DATA;
    const out = this.run.getUint8(d) === abi.KVM_EXIT_IO_OUT;
    const size = this.run.getUint8(d + 1);
    const port = this.run.getUint16(d + 2, true);
    const count = this.run.getUint32(d + 4, true);
    const offset = Number(this.run.getBigUint64(d + 8, true));
    // INVARIANT: KVM puts the data inside the kvm_run mapping; subarray bounds it if not.
    const bytes = this.fd.run.subarray(offset, offset + size * count);
    for (let i = 0; i < count; i++) {
      const item = bytes.subarray(i * size, (i + 1) * size);
      if (out) this.io.pioWrite(port, item);
      else this.io.pioRead(port, item);
    }
  }

  // Layout of kvm_run.mmio at KVM_RUN_EXIT_DATA:
  //   0 u64 phys_addr | 8 u8 data[8] | 16 u32 len | 20 u8 is_write
  private handleMmio(): void {
    const d = abi.KVM_RUN_EXIT_DATA;
    const address = Number(this.run.getBigUint64(d, true));
    const len = Math.min(this.run.getUint32(d + 16, true), 8);
    const data = this.fd.run.subarray(d + 8, d + 8 + len);
    if (this.run.getUint8(d + 20)) this.io.mmioWrite(address, data);
    else this.io.mmioRead(address, data);
  }

  private safeRip(): bigint | undefined {
    try {
      return this.fd.getRegs().rip;
    } catch {
      return undefined;
    }
  }

  private stopWith(fault: VcpuFault): void {
    this.runState = 'stopped';
    this.settlePause();
    this.io.fault(fault);
  }
}
