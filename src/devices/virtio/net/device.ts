// virtio-net (virtio 1.2 §5.1): one receive and one transmit queue over a back-end that moves
// whole Ethernet frames (a tap). A MAC address and link status in config space; no offloads,
// no control queue, no multiqueue.

import { readConfigSpace } from '../config-space.js';
import { serviceQueue } from '../service-queue.js';
import { featureBit, VIRTIO_ID_NET } from '../virtio-abi.js';
import type { VirtioDevice, VirtioQueueContext } from '../virtio-device.js';
import { newVirtioNetMetrics, type VirtioNetMetrics } from './metrics.js';
import { MAX_FRAME_SIZE, type NetBackend, receiveFrames, transmitFrame } from './queue-handler.js';
import { type VirtioNetState, parseMac, readVirtioNetState } from './state.js';

export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_QUEUE_SIZE = 256;
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;

export interface VirtioNetArgs {
  backend: NetBackend;
  mac: string;
}
export type VirtioNetRestoreArgs = Pick<VirtioNetArgs, 'backend'>;

export class VirtioNet implements VirtioDevice<VirtioNetState> {
  readonly deviceType = VIRTIO_ID_NET;
  readonly queueMaxSizes = [VIRTIO_NET_QUEUE_SIZE, VIRTIO_NET_QUEUE_SIZE];
  readonly deviceFeatures = featureBit(VIRTIO_NET_F_MAC) | featureBit(VIRTIO_NET_F_STATUS);
  readonly metrics: VirtioNetMetrics = newVirtioNetMetrics();
  private readonly config = new Uint8Array(8);
  private readonly frame = new Uint8Array(MAX_FRAME_SIZE);
  private ctx: VirtioQueueContext | undefined;

  constructor(private readonly args: VirtioNetArgs) {
    // Layout of struct virtio_net_config (what we fill): 0 u8 mac[6] | 6 u16 status.
    this.config.set(parseMac(args.mac), 0);
    new DataView(this.config.buffer).setUint16(6, VIRTIO_NET_S_LINK_UP, true);
  }

  static restore(args: VirtioNetRestoreArgs, state: VirtioNetState): VirtioNet {
    return new VirtioNet({ backend: args.backend, mac: readVirtioNetState(state).mac });
  }

  saveState(): VirtioNetState { return { mac: this.args.mac }; }

  readConfig(offset: number, data: Uint8Array): void { readConfigSpace(this.config, offset, data); }
  writeConfig(): void { /* the MAC is the VMM's to set */ }

  activate(ctx: VirtioQueueContext): void { this.ctx = ctx; }

  reset(): void {
    this.ctx = undefined;
    this.args.backend.setReadInterest(false);
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (index === TX_QUEUE) serviceQueue(ctx, TX_QUEUE, (chain) => transmitFrame(ctx.memory, chain, this.args.backend, this.frame, this.metrics));
    else if (index === RX_QUEUE) this.backendReadable();
  }

  /** The back-end has frames (or the guest added receive buffers): deliver what fits. */
  backendReadable(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[RX_QUEUE];
    if (!ctx || !q) return;
    try {
      const { delivered, starved } = receiveFrames(ctx.memory, q, this.args.backend, this.frame, this.metrics);
      // Out of guest buffers: leave frames in the back-end's queue until the guest adds some.
      this.args.backend.setReadInterest(!starved);
      if (delivered > 0) ctx.signalUsed(RX_QUEUE);
    } catch (e) {
      this.args.backend.setReadInterest(false);
      ctx.fail(e as Error);
    }
  }
}
