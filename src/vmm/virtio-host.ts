// The host side of a VM's virtio devices: each device's transport on the MMIO bus, its queue
// notifications through KVM ioeventfds, its interrupt through a KVM irqfd, and its back-end (an
// image file, a tap, a byte sink, getrandom). It owns those fds and closes them on release.
// Device slot i sits at VIRTIO_MMIO_START + i * 4 KiB with GSI VIRTIO_GSI_BASE + i.

import { randomFillSync } from 'node:crypto';
import { Bus } from '../devices/bus.js';
import type { ByteSink, IrqLine, MmioDevice } from '../devices/device.js';
import { VirtioBlock } from '../devices/virtio/block/device.js';
import { VirtioConsole } from '../devices/virtio/console/device.js';
import { VirtioMmioTransport, type VirtioMmioState } from '../devices/virtio/mmio-transport.js';
import { VirtioNet } from '../devices/virtio/net/device.js';
import { VirtioRng } from '../devices/virtio/rng/device.js';
import { VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_SIZE } from '../devices/virtio/virtio-abi.js';
import type { VirtioDevice } from '../devices/virtio/virtio-device.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { VIRTIO_GSI_BASE, VIRTIO_MAX_DEVICES, VIRTIO_MMIO_START, VIRTIO_MMIO_STRIDE } from '../arch/x86_64/layout.js';
import * as abi from '../sys/kvm-abi.js';
import type { VmFd } from '../sys/kvm.js';
import type { BlockFile } from '../sys/block-file.js';
import { EFD_NONBLOCK, native, type FdWatchHandle } from '../sys/native.js';
import type { Tap } from '../sys/tap.js';
import { TapBackend } from './tap-backend.js';

/** A virtio device to give the VM, with its host resource (which the VM then owns). */
export type VirtioAttachment =
  | { kind: 'block'; id: string; file: BlockFile; serial: string }
  | { kind: 'net'; id: string; tap: Tap; mac: string }
  | { kind: 'console'; id: string; sink: ByteSink }
  | { kind: 'rng'; id: string };

export type VirtioKind = VirtioAttachment['kind'];

/** A device's saved state, keyed by its id in the snapshot. */
export interface VirtioSlotState {
  kind: VirtioKind;
  slot: number;
  /** A VirtioMmioState as saved; untrusted when it was received, and checked field by field on restore. */
  transport: unknown;
}

export class VirtioSetupError extends Error {
  readonly code = 'ERR_VIRTIO_CONFIG';
}

interface Slot {
  readonly attachment: VirtioAttachment;
  readonly index: number;
  transport: VirtioMmioTransport<unknown>;
  readonly notifyFds: number[];
  readonly irqFd: number;
  watches: FdWatchHandle[];
  readonly tap?: TapBackend;
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

export class VirtioHost {
  readonly bus = new Bus<MmioDevice>();
  private readonly slots: Slot[] = [];
  private running = false;

  constructor(private readonly vm: VmFd, private readonly memory: GuestMemory, attachments: readonly VirtioAttachment[]) {
    if (attachments.length > VIRTIO_MAX_DEVICES) throw new VirtioSetupError(`a VM has at most ${VIRTIO_MAX_DEVICES} virtio devices, not ${attachments.length}`);
    const ids = new Set<string>();
    try {
      attachments.forEach((a, i) => {
        if (ids.has(a.id)) throw new VirtioSetupError(`two virtio devices are called "${a.id}"; give each its own id`);
        ids.add(a.id);
        this.slots.push(this.place(a, i));
      });
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** The kernel command line arguments that tell the guest where the devices are. */
  get cmdline(): string {
    return this.slots.map((s) => `virtio_mmio.device=4K@0x${base(s.index).toString(16)}:${VIRTIO_GSI_BASE + s.index}`).join(' ');
  }

  get count(): number { return this.slots.length; }

  private place(a: VirtioAttachment, index: number): Slot {
    const irqFd = native().eventfd(0, EFD_NONBLOCK);
    const notifyFds: number[] = [];
    const slot: Slot = { attachment: a, index, notifyFds, irqFd, watches: [], transport: undefined!, tap: a.kind === 'net' ? new TapBackend(a.tap, () => this.netReadable(slot)) : undefined };
    try {
      this.vm.irqfd({ fd: irqFd, gsi: VIRTIO_GSI_BASE + index, flags: 0 });
      slot.transport = new VirtioMmioTransport({ memory: this.memory, irq: this.irqLine(irqFd) }, this.createDevice(slot));
      slot.transport.device.queueMaxSizes.forEach((_, q) => {
        const fd = native().eventfd(0, EFD_NONBLOCK);
        notifyFds.push(fd);
        this.vm.ioeventfd({ addr: base(index) + VIRTIO_MMIO_QUEUE_NOTIFY, len: 4, datamatch: BigInt(q), fd, flags: abi.KVM_IOEVENTFD_FLAG_DATAMATCH });
      });
      this.bus.insert(`virtio-${a.id}`, base(index), VIRTIO_MMIO_SIZE, { mmioRead: (o, d) => slot.transport.mmioRead(o, d), mmioWrite: (o, d) => slot.transport.mmioWrite(o, d) });
    } catch (e) {
      for (const fd of [irqFd, ...notifyFds]) native().close(fd);
      throw e;
    }
    return slot;
  }

  private irqLine(fd: number): IrqLine {
    // An irqfd write is an edge on the GSI; the level form is not used by virtio-mmio here.
    return { pulse: () => { native().write(fd, ONE); }, setLevel: (high) => { if (high) native().write(fd, ONE); } };
  }

  private createDevice(slot: Slot, state?: unknown): VirtioDevice<unknown> {
    const a = slot.attachment;
    switch (a.kind) {
      case 'block': return (state === undefined ? new VirtioBlock({ backend: a.file, serial: a.serial }) : VirtioBlock.restore({ backend: a.file }, state as never)) as VirtioDevice<unknown>;
      case 'net': return (state === undefined ? new VirtioNet({ backend: slot.tap!, mac: a.mac }) : VirtioNet.restore({ backend: slot.tap! }, state as never)) as VirtioDevice<unknown>;
      case 'console': return (state === undefined ? new VirtioConsole({ sink: a.sink }) : VirtioConsole.restore({ sink: a.sink }, state as never)) as VirtioDevice<unknown>;
      case 'rng': {
        const source = { fill: (b: Uint8Array) => { randomFillSync(b); } };
        return (state === undefined ? new VirtioRng({ source }) : VirtioRng.restore({ source }, state as never)) as VirtioDevice<unknown>;
      }
    }
  }

  private netReadable(slot: Slot): void {
    const d = slot.transport.device;
    if (this.running && d instanceof VirtioNet) d.backendReadable();
  }

  /** Host input for a virtio console; returns the bytes accepted. */
  consoleInput(id: string, bytes: Uint8Array): number {
    const s = this.slots.find((x) => x.attachment.id === id && x.attachment.kind === 'console');
    // A paused VM takes no input: it would arrive after its state was saved for a swap.
    const d = s?.transport.device;
    return this.running && d instanceof VirtioConsole ? d.input(bytes) : 0;
  }

  /** The VM runs (again): listen to notifications and back-ends, and serve whatever is queued. */
  resume(): void {
    if (this.running) return;
    this.running = true;
    for (const s of this.slots) {
      s.watches = s.notifyFds.map((fd, q) => native().fdWatch(fd, () => this.onNotify(s, fd, q)));
      s.tap?.setEnabled(true);
    }
    for (const s of this.slots) {
      s.transport.reassertInterrupt();
      s.transport.kickAll();
    }
  }

  /**
   * The vCPUs are stopped: finish every request the guest has queued (so none is in flight in the
   * saved state), then stop listening. Frames arriving on a tap from now on wait in its queue.
   */
  quiesce(): void {
    for (const s of this.slots) s.transport.kickAll();
    this.stopListening();
  }

  private readonly drain = new Uint8Array(8);
  private onNotify(s: Slot, fd: number, q: number): void {
    native().read(fd, this.drain);
    s.transport.notify(q);
  }

  save(): Record<string, VirtioSlotState> {
    return Object.fromEntries(this.slots.map((s) => [s.attachment.id, { kind: s.attachment.kind, slot: s.index, transport: s.transport.saveState() }]));
  }

  /** Replaces every device with its saved state; the ids, kinds and slots must match this VM's. */
  restore(states: Readonly<Record<string, VirtioSlotState>>): void {
    const ids = Object.keys(states);
    if (ids.length !== this.slots.length) throw new VirtioSetupError(`the saved state has ${ids.length} virtio devices but this VM has ${this.slots.length}; hand over the VM with the same devices`);
    for (const s of this.slots) {
      const st = states[s.attachment.id];
      if (!st || st.kind !== s.attachment.kind || st.slot !== s.index) throw new VirtioSetupError(`virtio device ${s.attachment.id} (${s.attachment.kind}, slot ${s.index}) is not in the saved state as such`);
      const irq = this.irqLine(s.irqFd);
      const saved = st.transport as VirtioMmioState<unknown>;
      const deviceState: unknown = typeof saved === 'object' && saved !== null ? saved.device : undefined;
      s.transport = VirtioMmioTransport.restore({ memory: this.memory, irq }, this.createDevice(s, deviceState ?? null), saved);
    }
  }

  /** Host fds to hand to another instance, in slot order (block images and taps). */
  handoverFds(): number[] {
    return this.slots.flatMap((s) => (s.attachment.kind === 'block' ? [s.attachment.file.fd] : s.attachment.kind === 'net' ? [s.attachment.tap.fd] : []));
  }

  metrics(): Array<{ id: string; kind: VirtioKind; transport: VirtioMmioTransport<unknown>['metrics']; device: unknown }> {
    return this.slots.map((s) => ({ id: s.attachment.id, kind: s.attachment.kind, transport: s.transport.metrics, device: (s.transport.device as { metrics?: unknown }).metrics }));
  }

  /** Stops listening and closes every fd, back-ends included. Safe to call twice. */
  release(): void {
    if (this.running) this.stopListening();
    for (const s of this.slots) {
      for (const fd of [s.irqFd, ...s.notifyFds]) native().close(fd);
      s.notifyFds.length = 0;
    }
    closeAttachments(this.slots.map((s) => s.attachment));
    this.slots.length = 0;
  }

  private stopListening(): void {
    this.running = false;
    for (const s of this.slots) {
      for (const w of s.watches) native().fdUnwatch(w);
      s.watches = [];
      s.tap?.setEnabled(false);
    }
  }
}

const base = (index: number): number => VIRTIO_MMIO_START + index * VIRTIO_MMIO_STRIDE;

/** Closes the host resources of attachments that never made it into a VM. */
export function closeAttachments(devices: readonly VirtioAttachment[]): void {
  for (const a of devices) {
    if (a.kind === 'block') a.file.close();
    else if (a.kind === 'net') a.tap.close();
  }
}
