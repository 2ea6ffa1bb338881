// virtio-console (virtio 1.2 §5.3) with one port: a second console stream and a host<->guest byte
// channel. Host input waits in a bounded buffer until the guest posts receive buffers; it is part
// of the saved state. The emergency write register is supported. Not here: MULTIPORT, resize.

import type { ByteSink } from '../../device.js';
import { readConfigSpace } from '../config-space.js';
import { serviceQueue } from '../service-queue.js';
import { featureBit, VIRTIO_ID_CONSOLE } from '../virtio-abi.js';
import type { VirtioDevice, VirtioQueueContext } from '../virtio-device.js';
import { newVirtioConsoleMetrics, type VirtioConsoleMetrics } from './metrics.js';
import { receiveBytes, transmitBytes } from './queue-handler.js';
import { MAX_PENDING_INPUT, type VirtioConsoleState, readVirtioConsoleState } from './state.js';

export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
export const VIRTIO_CONSOLE_QUEUE_SIZE = 64;
export const RECEIVE_QUEUE = 0;
export const TRANSMIT_QUEUE = 1;
/** Offset of emerg_wr in struct virtio_console_config: 0 u16 cols | 2 u16 rows | 4 u32 max_nr_ports | 8 u32 emerg_wr. */
const EMERG_WR_OFFSET = 8;

export interface VirtioConsoleArgs {
  /** Where the guest's output goes. */
  sink: ByteSink;
}
export type VirtioConsoleRestoreArgs = VirtioConsoleArgs;

export class VirtioConsole implements VirtioDevice<VirtioConsoleState> {
  readonly deviceType = VIRTIO_ID_CONSOLE;
  readonly queueMaxSizes = [VIRTIO_CONSOLE_QUEUE_SIZE, VIRTIO_CONSOLE_QUEUE_SIZE];
  readonly deviceFeatures = featureBit(VIRTIO_CONSOLE_F_EMERG_WRITE);
  readonly metrics: VirtioConsoleMetrics = newVirtioConsoleMetrics();
  private readonly config = new Uint8Array(12);
  private pending: Uint8Array = new Uint8Array(0);
  private ctx: VirtioQueueContext | undefined;

  constructor(private readonly args: VirtioConsoleArgs) {}

  static restore(args: VirtioConsoleRestoreArgs, state: VirtioConsoleState): VirtioConsole {
    const d = new VirtioConsole(args);
    d.pending = readVirtioConsoleState(state).pendingInput;
    return d;
  }

  saveState(): VirtioConsoleState { return { pendingInput: this.pending.slice() }; }

  readConfig(offset: number, data: Uint8Array): void { readConfigSpace(this.config, offset, data); }

  writeConfig(offset: number, data: Uint8Array): void {
    if (offset !== EMERG_WR_OFFSET || data.byteLength < 1) return;
    this.metrics.emergencyWrites++;
    this.metrics.txBytes++;
    this.args.sink.write(data.slice(0, 1));
  }

  activate(ctx: VirtioQueueContext): void { this.ctx = ctx; }
  reset(): void { this.ctx = undefined; }

  /** Host input for the guest. Returns how many bytes were accepted (the rest: buffer full). */
  input(bytes: Uint8Array): number {
    const room = MAX_PENDING_INPUT - this.pending.byteLength;
    const n = Math.min(room, bytes.byteLength);
    this.metrics.inputDropped += bytes.byteLength - n;
    if (n > 0) {
      const next = new Uint8Array(this.pending.byteLength + n);
      next.set(this.pending);
      next.set(bytes.subarray(0, n), this.pending.byteLength);
      this.pending = next;
      this.deliver();
    }
    return n;
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (index === TRANSMIT_QUEUE) serviceQueue(ctx, TRANSMIT_QUEUE, (chain) => transmitBytes(ctx.memory, chain, this.args.sink, this.metrics));
    else if (index === RECEIVE_QUEUE) this.deliver();
  }

  private deliver(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[RECEIVE_QUEUE];
    if (!ctx || !q) return;
    let delivered = 0;
    try {
      while (this.pending.byteLength > 0) {
        if (q.pending() === 0 && !q.armNotification()) break;
        const chain = q.pop()!;
        const n = receiveBytes(ctx.memory, chain, this.pending, this.metrics);
        this.pending = this.pending.slice(n);
        q.pushUsed(chain.head, n);
        delivered++;
      }
    } catch (e) {
      ctx.fail(e as Error);
      return;
    }
    if (delivered > 0) ctx.signalUsed(RECEIVE_QUEUE);
  }
}
