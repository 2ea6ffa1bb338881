// The virtio-mmio transport, version 2 ("modern") only (virtio 1.2 §4.2): the register file the
// guest driver programs, feature negotiation, queue setup and the interrupt status. One transport
// wraps one device; the VMM places it on the MMIO bus and wires its notify and interrupt paths.

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { IrqLine, MmioDevice, Persist } from '../device.js';
import { readInt, readRecord, DeviceStateError } from '../legacy/device-state-error.js';
import { VirtqueueError } from './descriptor-chain.js';
import { type QueueState, Virtqueue, initialQueueState } from './queue.js';
import * as v from './virtio-abi.js';
import type { VirtioDevice, VirtioQueueContext, VirtioTransportMetrics } from './virtio-device.js';

/** Features every transport offers on top of the device's own. */
export const TRANSPORT_FEATURES = v.featureBit(v.VIRTIO_F_VERSION_1) | v.featureBit(v.VIRTIO_F_RING_EVENT_IDX) | v.featureBit(v.VIRTIO_F_INDIRECT_DESC);

export interface VirtioMmioState<DeviceState> {
  deviceType: number;
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  /** The accepted features as two u32 halves (JSON numbers stay exact). */
  driverFeaturesLow: number;
  driverFeaturesHigh: number;
  queueSel: number;
  interruptStatus: number;
  configGeneration: number;
  queues: QueueState[];
  device: DeviceState;
}

export interface VirtioMmioArgs {
  memory: GuestMemory;
  irq: IrqLine;
}

const U32 = 0xffffffff;
const hi32 = (x: number): number => Math.floor(x / 2 ** 32);
const withLow = (x: number, low: number): number => hi32(x) * 2 ** 32 + low;
const withHigh = (x: number, high: number): number => high * 2 ** 32 + (x % 2 ** 32);

export class VirtioMmioTransport<S> implements MmioDevice, Persist<VirtioMmioState<S>> {
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private queueStates: QueueState[];
  private queues: Array<Virtqueue | undefined> = [];
  readonly metrics: VirtioTransportMetrics = { badAccesses: 0, refusedFeatures: 0, needsReset: 0, notifications: 0, interrupts: 0 };

  constructor(private readonly args: VirtioMmioArgs, readonly device: VirtioDevice<S>) {
    this.queueStates = device.queueMaxSizes.map(initialQueueState);
  }

  /** Recreates a transport from saved state around a device restored by its own `restore`. */
  static restore<S>(args: VirtioMmioArgs, device: VirtioDevice<S>, state: VirtioMmioState<S>): VirtioMmioTransport<S> {
    const name = `virtio-mmio(${device.deviceType})`;
    const r = readRecord(name, state);
    if (readInt(name, r, 'deviceType', 0, 0xffff) !== device.deviceType) throw new DeviceStateError(name, 'deviceType', `is ${String(r.deviceType)}, not this device's ${device.deviceType}`);
    const t = new VirtioMmioTransport(args, device);
    t.status = readInt(name, r, 'status', 0, 0xff);
    t.deviceFeaturesSel = readInt(name, r, 'deviceFeaturesSel', 0, U32);
    t.driverFeaturesSel = readInt(name, r, 'driverFeaturesSel', 0, U32);
    t.driverFeatures = (BigInt(readInt(name, r, 'driverFeaturesHigh', 0, U32)) << 32n) | BigInt(readInt(name, r, 'driverFeaturesLow', 0, U32));
    t.queueSel = readInt(name, r, 'queueSel', 0, U32);
    t.interruptStatus = readInt(name, r, 'interruptStatus', 0, 3);
    t.configGeneration = readInt(name, r, 'configGeneration', 0, U32);
    if (!Array.isArray(r.queues) || r.queues.length !== device.queueMaxSizes.length) throw new DeviceStateError(name, 'queues', `must list ${device.queueMaxSizes.length} queues`);
    t.queueStates = r.queues.map((q: unknown, i) => readQueueState(`${name} queue ${i}`, q, device.queueMaxSizes[i]!));
    // Activated but not kicked: the VMM kicks every queue once the VM runs again.
    if (t.running) t.activate();
    return t;
  }

  saveState(): VirtioMmioState<S> {
    const queues = this.queueStates.map((q, i) => (this.queues[i] ? this.queues[i]!.state : { ...q }));
    return {
      deviceType: this.device.deviceType, status: this.status, deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel, driverFeaturesLow: Number(this.driverFeatures & 0xffffffffn),
      driverFeaturesHigh: Number(this.driverFeatures >> 32n), queueSel: this.queueSel, interruptStatus: this.interruptStatus,
      configGeneration: this.configGeneration, queues, device: this.device.saveState(),
    };
  }

  /** Negotiated features (meaningful once FEATURES_OK is set). */
  get features(): bigint { return this.driverFeatures; }
  get deviceStatus(): number { return this.status; }
  private get running(): boolean {
    return (this.status & v.VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (this.status & v.VIRTIO_CONFIG_S_NEEDS_RESET) === 0;
  }
  private get offered(): bigint { return this.device.deviceFeatures | TRANSPORT_FEATURES; }

  /** A notification for queue `index`, from QueueNotify or from its ioeventfd. */
  notify(index: number): void {
    this.metrics.notifications++;
    if (!this.running || index >= this.queues.length || !this.queues[index]) return;
    try {
      this.device.queueNotify(index);
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Pulses the interrupt again if the driver has not acknowledged one yet. After a restore, an edge
   * sent just before the save may not have reached the old VM's irqchip in time to be saved; with
   * EVENT_IDX the device would then never interrupt again. A spurious interrupt costs a ring check.
   */
  reassertInterrupt(): void {
    if (this.interruptStatus !== 0) this.args.irq.pulse();
  }

  /** Processes every queue as if notified: before a save (finish what the guest queued) and after a restore. */
  kickAll(): void {
    for (let i = 0; i < this.queues.length; i++) this.notify(i);
  }

  mmioRead(offset: number, data: Uint8Array): void {
    if (offset >= v.VIRTIO_MMIO_CONFIG) {
      this.device.readConfig(offset - v.VIRTIO_MMIO_CONFIG, data);
      return;
    }
    const value = data.byteLength === 4 ? this.readRegister(offset) : undefined;
    if (value === undefined) {
      this.metrics.badAccesses++;
      data.fill(0);
      return;
    }
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, value >>> 0, true);
  }

  mmioWrite(offset: number, data: Uint8Array): void {
    if (offset >= v.VIRTIO_MMIO_CONFIG) {
      this.device.writeConfig(offset - v.VIRTIO_MMIO_CONFIG, data);
      this.configGeneration = (this.configGeneration + 1) >>> 0;
      return;
    }
    if (data.byteLength !== 4 || !this.writeRegister(offset, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true))) {
      this.metrics.badAccesses++;
    }
  }

  private selectedQueue(): QueueState | undefined {
    return this.queueStates[this.queueSel];
  }

  private readRegister(offset: number): number | undefined {
    const q = this.selectedQueue();
    switch (offset) {
      case v.VIRTIO_MMIO_MAGIC_VALUE: return v.VIRTIO_MMIO_MAGIC;
      case v.VIRTIO_MMIO_VERSION: return 2;
      case v.VIRTIO_MMIO_DEVICE_ID: return this.device.deviceType;
      case v.VIRTIO_MMIO_VENDOR_ID: return v.SWAPVISOR_VIRTIO_VENDOR;
      case v.VIRTIO_MMIO_DEVICE_FEATURES:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.offered >> BigInt(32 * this.deviceFeaturesSel)) & 0xffffffffn);
      case v.VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? this.device.queueMaxSizes[this.queueSel]! : 0;
      case v.VIRTIO_MMIO_QUEUE_READY: return q?.ready ? 1 : 0;
      case v.VIRTIO_MMIO_INTERRUPT_STATUS: return this.interruptStatus;
      case v.VIRTIO_MMIO_STATUS: return this.status;
      case v.VIRTIO_MMIO_CONFIG_GENERATION: return this.configGeneration;
      case v.VIRTIO_MMIO_SHM_SEL: return 0;
      default: return undefined;
    }
  }

  private writeRegister(offset: number, value: number): boolean {
    const q = this.selectedQueue();
    // Queue setup is only honoured while the queue is not live.
    const setup = q !== undefined && !q.ready;
    switch (offset) {
      case v.VIRTIO_MMIO_DEVICE_FEATURES_SEL: this.deviceFeaturesSel = value; return true;
      case v.VIRTIO_MMIO_DRIVER_FEATURES_SEL: this.driverFeaturesSel = value; return true;
      case v.VIRTIO_MMIO_DRIVER_FEATURES: return this.writeDriverFeatures(value);
      case v.VIRTIO_MMIO_QUEUE_SEL: this.queueSel = value; return true;
      case v.VIRTIO_MMIO_QUEUE_NUM: if (setup) q.size = value; return setup;
      case v.VIRTIO_MMIO_QUEUE_READY: return this.writeQueueReady(value);
      case v.VIRTIO_MMIO_QUEUE_NOTIFY: this.notify(value & 0xffff); return true;
      case v.VIRTIO_MMIO_INTERRUPT_ACK: this.interruptStatus &= ~value; return true;
      case v.VIRTIO_MMIO_STATUS: this.writeStatus(value & 0xff); return true;
      case v.VIRTIO_MMIO_QUEUE_DESC_LOW: if (setup) q.descAddr = withLow(q.descAddr, value); return setup;
      case v.VIRTIO_MMIO_QUEUE_DESC_HIGH: if (setup) q.descAddr = withHigh(q.descAddr, value); return setup;
      case v.VIRTIO_MMIO_QUEUE_DRIVER_LOW: if (setup) q.driverAddr = withLow(q.driverAddr, value); return setup;
      case v.VIRTIO_MMIO_QUEUE_DRIVER_HIGH: if (setup) q.driverAddr = withHigh(q.driverAddr, value); return setup;
      case v.VIRTIO_MMIO_QUEUE_DEVICE_LOW: if (setup) q.deviceAddr = withLow(q.deviceAddr, value); return setup;
      case v.VIRTIO_MMIO_QUEUE_DEVICE_HIGH: if (setup) q.deviceAddr = withHigh(q.deviceAddr, value); return setup;
      case v.VIRTIO_MMIO_SHM_SEL: return true;
      default: return false;
    }
  }

  private writeDriverFeatures(value: number): boolean {
    const negotiating = (this.status & v.VIRTIO_CONFIG_S_DRIVER) !== 0 && (this.status & v.VIRTIO_CONFIG_S_FEATURES_OK) === 0;
    if (!negotiating || this.driverFeaturesSel > 1) return false;
    const shift = BigInt(32 * this.driverFeaturesSel);
    this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(value >>> 0) << shift);
    return true;
  }

  private writeQueueReady(value: number): boolean {
    const q = this.selectedQueue();
    if (!q) return false;
    if (value === 0) { q.ready = false; return true; }
    q.ready = true;
    if (q.size === 0 || q.size > this.device.queueMaxSizes[this.queueSel]!) {
      this.fail(new VirtqueueError('bad-queue', `queue ${this.queueSel} size ${q.size} is over its maximum ${this.device.queueMaxSizes[this.queueSel]!}`));
      return true;
    }
    try {
      Virtqueue.check(this.args.memory, q);
    } catch (e) {
      this.fail(e);
    }
    return true;
  }

  /** §2.1.1, §3.1.1: the driver's status writes drive negotiation, activation and reset. */
  private writeStatus(value: number): void {
    if (value === 0) { this.reset(); return; }
    const adding = value & ~this.status;
    if (adding & v.VIRTIO_CONFIG_S_FEATURES_OK) {
      const unoffered = this.driverFeatures & ~this.offered;
      const version1 = (this.driverFeatures & v.featureBit(v.VIRTIO_F_VERSION_1)) !== 0n;
      if (unoffered !== 0n || !version1) {
        // Leaving FEATURES_OK clear is how the spec says "no" (§3.1.1 step 6).
        this.metrics.refusedFeatures++;
        value &= ~v.VIRTIO_CONFIG_S_FEATURES_OK;
      }
    }
    if ((adding & v.VIRTIO_CONFIG_S_DRIVER_OK) && !(value & v.VIRTIO_CONFIG_S_FEATURES_OK)) value &= ~v.VIRTIO_CONFIG_S_DRIVER_OK;
    // NEEDS_RESET is the device's to set; the driver cannot clear it without a reset.
    this.status = (value & ~v.VIRTIO_CONFIG_S_NEEDS_RESET) | (this.status & v.VIRTIO_CONFIG_S_NEEDS_RESET);
    if ((adding & v.VIRTIO_CONFIG_S_DRIVER_OK) && this.running) {
      this.activate();
      this.kickAll();
    }
  }

  private activate(): void {
    try {
      const eventIdx = (this.driverFeatures & v.featureBit(v.VIRTIO_F_RING_EVENT_IDX)) !== 0n;
      this.queues = this.queueStates.map((q) => (q.ready ? new Virtqueue(this.args.memory, q, eventIdx) : undefined));
      this.device.activate(this.context(), this.driverFeatures);
    } catch (e) {
      this.fail(e);
    }
  }

  private context(): VirtioQueueContext {
    return {
      memory: this.args.memory,
      queues: this.queues,
      signalUsed: (i) => {
        const q = this.queues[i];
        if (q && q.needsInterrupt()) this.raise(v.VIRTIO_MMIO_INT_VRING);
      },
      fail: (e) => this.fail(e),
    };
  }

  private raise(bits: number): void {
    this.interruptStatus |= bits;
    this.metrics.interrupts++;
    this.args.irq.pulse();
  }

  /** Protocol violations stop the device with NEEDS_RESET and a config interrupt (§2.1.2). */
  private fail(e: unknown): void {
    if (!(e instanceof VirtqueueError)) throw e;
    if (this.status & v.VIRTIO_CONFIG_S_NEEDS_RESET) return;
    this.metrics.needsReset++;
    this.status |= v.VIRTIO_CONFIG_S_NEEDS_RESET;
    this.queueStates = this.queueStates.map((q, i) => this.queues[i]?.state ?? q);
    this.queues = [];
    this.raise(v.VIRTIO_MMIO_INT_CONFIG);
  }

  private reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.interruptStatus = 0;
    this.queueStates = this.device.queueMaxSizes.map(initialQueueState);
    this.queues = [];
    this.device.reset();
  }
}

function readQueueState(name: string, q: unknown, maxSize: number): QueueState {
  const r = readRecord(name, q);
  const ready = r.ready;
  if (typeof ready !== 'boolean') throw new DeviceStateError(name, 'ready', 'must be a boolean');
  const addr = (f: string): number => readInt(name, r, f, 0, Number.MAX_SAFE_INTEGER);
  return {
    size: readInt(name, r, 'size', 0, ready ? maxSize : U32), ready,
    descAddr: addr('descAddr'), driverAddr: addr('driverAddr'), deviceAddr: addr('deviceAddr'),
    nextAvail: readInt(name, r, 'nextAvail', 0, 0xffff), nextUsed: readInt(name, r, 'nextUsed', 0, 0xffff),
    signalledUsed: readInt(name, r, 'signalledUsed', 0, 0xffff),
  };
}
