// virtio-blk (virtio 1.2 §5.2): one request queue over a raw disk image. Requests run
// synchronously on the VMM's event loop, so none is ever in flight when the VM is saved; a write
// is in the image file when the guest sees it completed. Not here: multiqueue, write-zeroes.

import { readConfigSpace } from '../config-space.js';
import { serviceQueue } from '../service-queue.js';
import { featureBit, VIRTIO_ID_BLOCK } from '../virtio-abi.js';
import type { VirtioDevice, VirtioQueueContext } from '../virtio-device.js';
import { newVirtioBlockMetrics, type VirtioBlockMetrics } from './metrics.js';
import { type BlockBackend, MAX_DISCARD_SECTORS, MAX_DISCARD_SEGMENTS, SECTOR_SIZE, handleBlockRequest } from './queue-handler.js';
import { type VirtioBlockState, VIRTIO_BLOCK_STATE_NAME, readVirtioBlockState } from './state.js';
import { DeviceStateError } from '../../legacy/device-state-error.js';

export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_QUEUE_SIZE = 256;

export interface VirtioBlockArgs {
  backend: BlockBackend;
  /** The GET_ID string, at most 20 ASCII characters. */
  serial: string;
}
export type VirtioBlockRestoreArgs = Pick<VirtioBlockArgs, 'backend'>;

export class VirtioBlock implements VirtioDevice<VirtioBlockState> {
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly queueMaxSizes = [VIRTIO_BLK_QUEUE_SIZE];
  readonly metrics: VirtioBlockMetrics = newVirtioBlockMetrics();
  private readonly config: Uint8Array;
  private readonly capacitySectors: number;
  private ctx: VirtioQueueContext | undefined;

  constructor(private readonly args: VirtioBlockArgs) {
    if (args.serial.length > 20) throw new RangeError('a virtio-blk serial is at most 20 characters');
    this.capacitySectors = Math.floor(args.backend.sizeBytes / SECTOR_SIZE);
    this.config = this.buildConfig();
  }

  static restore(args: VirtioBlockRestoreArgs, state: VirtioBlockState): VirtioBlock {
    const s = readVirtioBlockState(state);
    const d = new VirtioBlock({ backend: args.backend, serial: s.serial });
    if (d.capacitySectors !== s.capacitySectors) {
      throw new DeviceStateError(VIRTIO_BLOCK_STATE_NAME, 'capacitySectors', `is ${s.capacitySectors} but the disk now has ${d.capacitySectors} sectors; hand over the same image`);
    }
    if (args.backend.readOnly !== s.readOnly) throw new DeviceStateError(VIRTIO_BLOCK_STATE_NAME, 'readOnly', 'does not match how the disk was opened');
    return d;
  }

  saveState(): VirtioBlockState {
    return { capacitySectors: this.capacitySectors, readOnly: this.args.backend.readOnly, serial: this.args.serial };
  }

  get deviceFeatures(): bigint {
    let f = featureBit(VIRTIO_BLK_F_SEG_MAX) | featureBit(VIRTIO_BLK_F_BLK_SIZE) | featureBit(VIRTIO_BLK_F_FLUSH);
    f |= this.args.backend.readOnly ? featureBit(VIRTIO_BLK_F_RO) : featureBit(VIRTIO_BLK_F_DISCARD);
    return f;
  }

  // Layout of struct virtio_blk_config (the fields we fill):
  //   0 u64 capacity (sectors) | 12 u32 seg_max | 20 u32 blk_size | 36 u32 max_discard_sectors
  //   40 u32 max_discard_seg | 44 u32 discard_sector_alignment; 60 bytes in all
  private buildConfig(): Uint8Array {
    const c = new Uint8Array(60);
    const d = new DataView(c.buffer);
    d.setBigUint64(0, BigInt(this.capacitySectors), true);
    d.setUint32(12, VIRTIO_BLK_QUEUE_SIZE - 2, true);
    d.setUint32(20, SECTOR_SIZE, true);
    d.setUint32(36, MAX_DISCARD_SECTORS, true);
    d.setUint32(40, MAX_DISCARD_SEGMENTS, true);
    d.setUint32(44, 1, true);
    return c;
  }

  readConfig(offset: number, data: Uint8Array): void { readConfigSpace(this.config, offset, data); }
  writeConfig(): void { /* read-only config */ }

  activate(ctx: VirtioQueueContext): void { this.ctx = ctx; }
  reset(): void { this.ctx = undefined; }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx || index !== 0) return;
    const req = { memory: ctx.memory, backend: this.args.backend, metrics: this.metrics, serial: this.args.serial, capacitySectors: this.capacitySectors };
    serviceQueue(ctx, 0, (chain) => handleBlockRequest(req, chain));
  }
}
