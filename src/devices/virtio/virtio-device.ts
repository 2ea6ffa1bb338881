// The contract between the virtio-mmio transport and a virtio device (block, net, console, rng):
// the transport owns the registers, feature negotiation and queue setup; the device owns its
// config space and what its requests mean. Every device folder implements VirtioDevice.

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { Persist } from '../device.js';
import type { Virtqueue } from './queue.js';

/** What a device gets when the driver sets DRIVER_OK (or when it is restored running). */
export interface VirtioQueueContext {
  readonly memory: GuestMemory;
  /** Indexed by queue; undefined for a queue the driver did not enable. */
  readonly queues: ReadonlyArray<Virtqueue | undefined>;
  /** Interrupts the driver for new used entries on a queue, if the driver wants that now. */
  signalUsed(queueIndex: number): void;
  /** The driver broke the protocol: the device stops and reports DEVICE_NEEDS_RESET. */
  fail(error: Error): void;
}

export interface VirtioDevice<State> extends Persist<State> {
  /** The virtio device id (§5), e.g. VIRTIO_ID_BLOCK. */
  readonly deviceType: number;
  /** One entry per queue: the largest size the device accepts. */
  readonly queueMaxSizes: readonly number[];
  /** Device-specific feature bits offered; the transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC. */
  readonly deviceFeatures: bigint;
  readConfig(offset: number, data: Uint8Array): void;
  writeConfig(offset: number, data: Uint8Array): void;
  /** The driver is ready (or the device was restored running); `features` is what it accepted. The transport kicks the queues after. */
  activate(ctx: VirtioQueueContext, features: bigint): void;
  /** Back to the initial state (the driver wrote 0 to Status, or asked for a reset). */
  reset(): void;
  /** The driver notified queue `index` (QueueNotify or its ioeventfd). */
  queueNotify(index: number): void;
}

/** Counters every transport keeps, whatever the device. */
export interface VirtioTransportMetrics {
  /** Register accesses of a width other than 32 bits, or to offsets that do not exist. */
  badAccesses: number;
  /** FEATURES_OK refused because the driver accepted bits that were not offered (or not VERSION_1). */
  refusedFeatures: number;
  /** Times the device entered DEVICE_NEEDS_RESET because of a broken queue or request. */
  needsReset: number;
  notifications: number;
  interrupts: number;
}
