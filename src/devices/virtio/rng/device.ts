// virtio-rng (virtio 1.2 §5.4): one request queue; the guest posts writable buffers and gets them
// back full of random bytes from the host.

import { serviceQueue } from '../service-queue.js';
import { VIRTIO_ID_RNG } from '../virtio-abi.js';
import type { VirtioDevice, VirtioQueueContext } from '../virtio-device.js';
import { newVirtioRngMetrics, type VirtioRngMetrics } from './metrics.js';
import { type EntropySource, fillRandom } from './queue-handler.js';
import { type VirtioRngState, readVirtioRngState } from './state.js';

export const VIRTIO_RNG_QUEUE_SIZE = 64;

export interface VirtioRngArgs {
  source: EntropySource;
}
export type VirtioRngRestoreArgs = VirtioRngArgs;

export class VirtioRng implements VirtioDevice<VirtioRngState> {
  readonly deviceType = VIRTIO_ID_RNG;
  readonly queueMaxSizes = [VIRTIO_RNG_QUEUE_SIZE];
  readonly deviceFeatures = 0n;
  readonly metrics: VirtioRngMetrics = newVirtioRngMetrics();
  private ctx: VirtioQueueContext | undefined;

  constructor(private readonly args: VirtioRngArgs) {}

  static restore(args: VirtioRngRestoreArgs, state: VirtioRngState): VirtioRng {
    readVirtioRngState(state);
    return new VirtioRng(args);
  }

  saveState(): VirtioRngState { return {}; }
  readConfig(_offset: number, data: Uint8Array): void { data.fill(0); }
  writeConfig(): void { /* no config space */ }
  activate(ctx: VirtioQueueContext): void { this.ctx = ctx; }
  reset(): void { this.ctx = undefined; }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx || index !== 0) return;
    serviceQueue(ctx, 0, (chain) => fillRandom(ctx.memory, chain, this.args.source, this.metrics));
  }
}
