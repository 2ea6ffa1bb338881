// The versioned, self-describing form of a paused VM's state, as one hot swap hands it to the next
// instance: a state envelope (kind VmState) whose sections are keyed by stable ids. KVM structs are
// opaque blobs; device state is named fields. Guest RAM is never in it (it travels as a memfd).
//
// Sections (each with its own version; readers skip unknown sections and fields):
//   vm                      name, vcpuCount, memMib
//   vcpus/<id>              mpState, regs, sregs, xsave, xcrs, lapic, events, debugregs (blobs), msrs:
//                           v1 (written in format 1) a list of { index, data: "0x<hex>" }; v2 (format 2)
//                           one blob of struct kvm_msr_entry: u32 index | u32 reserved | u64 data
//   irqchip/pic-master, irqchip/pic-slave, irqchip/ioapic     kvm_irqchip blob
//   pit                     kvm_pit_state2 blob
//   clock                   kvm_clock_data blob (taken at the pause)
//   devices/serial0, devices/i8042, devices/rtc, devices/debug-exit    the device's saved fields
//   devices/virtio/<id>     (optional, one per virtio device) kind, slot, transport (queues, features,
//                           and the device's own fields under transport.device)

import type { CmosRtcState } from '../devices/legacy/cmos-rtc.js';
import type { DebugExitState } from '../devices/legacy/debug-exit.js';
import type { I8042State } from '../devices/legacy/i8042.js';
import type { Serial16550State } from '../devices/legacy/serial-16550.js';
import { COMPAT_FORMAT_VERSION, StateKind, decodeEnvelope, encodeEnvelope } from './envelope.js';
import { StateFormatError } from './errors.js';
import { readSection } from './section-reader.js';
import type { StateObject, StateSection, StateTree } from './tree.js';

export interface VcpuStateData {
  id: number;
  mpState: number;
  regs: Uint8Array;
  sregs: Uint8Array;
  xsave: Uint8Array;
  xcrs: Uint8Array;
  lapic: Uint8Array;
  msrs: Array<{ index: number; data: bigint }>;
  events: Uint8Array;
  debugregs: Uint8Array;
}

export type VirtioKindData = 'block' | 'net' | 'console' | 'rng';
const VIRTIO_KINDS: readonly string[] = ['block', 'net', 'console', 'rng'];
const VIRTIO_SECTION_PREFIX = 'devices/virtio/';
const MAX_VIRTIO_SLOTS = 8;

/** One virtio device's saved state; `transport` is checked field by field when it is restored. */
export interface VirtioSlotStateData {
  kind: VirtioKindData;
  slot: number;
  transport: unknown;
}

/** Structurally the same as vmm's MachineSnapshot, which this layer may not import. */
export interface VmStateData {
  kvm: {
    vcpus: VcpuStateData[];
    irqchip: Uint8Array[];
    pit: Uint8Array;
    clock: Uint8Array;
  };
  devices: {
    serial0: Serial16550State;
    i8042: I8042State;
    rtc: CmosRtcState;
    debugExit: DebugExitState;
  };
  virtio?: Record<string, VirtioSlotStateData>;
}

export interface VmStateIdentity {
  name: string;
  memMib: number;
}

const IRQCHIPS = ['irqchip/pic-master', 'irqchip/pic-slave', 'irqchip/ioapic'] as const;
const DEVICES = [['devices/serial0', 'serial0'], ['devices/i8042', 'i8042'], ['devices/rtc', 'rtc'], ['devices/debug-exit', 'debugExit']] as const;
/** The largest VM state we accept: 32 vCPUs of ~8 KiB plus devices with a full 64 KiB UART FIFO. */
export const MAX_VM_STATE_BYTES = 4 * 1024 * 1024;

const section = (v: number, f: StateObject): StateSection => ({ v, f });

const VCPU_BLOBS = ['regs', 'sregs', 'xsave', 'xcrs', 'lapic', 'events', 'debugregs'] as const;
const MAX_VCPUS = 32;
const U64_LIMIT = 1n << 64n;

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isMemMib = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const isBlob = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.byteLength > 0;

function unwritable(message: string): never {
  throw new StateFormatError('ERR_STATE_CONTENT', `VM state: ${message}; refusing to write state that the next instance could not restore`);
}

/** The reader's rules (decodeVmState), applied before writing, so a bad capture fails here and not in the next instance. */
function checkWritable(id: VmStateIdentity, s: VmStateData): void {
  if (typeof id.name !== 'string' || id.name === '') unwritable('the VM has no name');
  if (!isMemMib(id.memMib)) unwritable(`memMib ${String(id.memMib)} is not a positive integer`);
  const n = s.kvm.vcpus.length;
  if (n < 1 || n > MAX_VCPUS) unwritable(`vcpuCount ${n} is out of range (1..${MAX_VCPUS})`);
  s.kvm.vcpus.forEach((c, i) => {
    if (c.id !== i) unwritable(`vCPU ${i} has id ${String(c.id)}; the ids must be 0..${n - 1} in order`);
    if (!isU32(c.mpState)) unwritable(`vcpus/${i} has an mpState ${String(c.mpState)} that is not a u32`);
    for (const f of VCPU_BLOBS) if (!isBlob(c[f])) unwritable(`vcpus/${i} has no ${f} bytes`);
    for (const m of c.msrs) {
      if (!isU32(m.index)) unwritable(`vcpus/${i} has an MSR index ${String(m.index)} that is not a u32`);
      if (typeof m.data !== 'bigint' || m.data < 0n || m.data >= U64_LIMIT) {
        unwritable(`vcpus/${i} MSR 0x${m.index.toString(16)} has a value ${String(m.data)} outside 0..2^64-1`);
      }
    }
  });
  if (s.kvm.irqchip.length !== IRQCHIPS.length) unwritable(`there are ${s.kvm.irqchip.length} irqchip states instead of ${IRQCHIPS.length}`);
  IRQCHIPS.forEach((sid, i) => { if (!isBlob(s.kvm.irqchip[i])) unwritable(`section ${sid} has no kvm bytes`); });
  if (!isBlob(s.kvm.pit)) unwritable('section pit has no kvm bytes');
  if (!isBlob(s.kvm.clock)) unwritable('section clock has no kvm bytes');
  for (const [sid, key] of DEVICES) {
    const d: unknown = s.devices[key];
    if (typeof d !== 'object' || d === null || Array.isArray(d)) unwritable(`section ${sid} has no device state`);
  }
}

const MSR_ENTRY_BYTES = 16;

function msrsToBlob(msrs: ReadonlyArray<{ index: number; data: bigint }>): Uint8Array {
  const out = new Uint8Array(msrs.length * MSR_ENTRY_BYTES);
  const dv = new DataView(out.buffer);
  msrs.forEach((m, i) => {
    dv.setUint32(i * MSR_ENTRY_BYTES, m.index, true);
    dv.setBigUint64(i * MSR_ENTRY_BYTES + 8, m.data, true);
  });
  return out;
}

function msrsFromBlob(b: Uint8Array, sid: string): Array<{ index: number; data: bigint }> {
  if (b.byteLength % MSR_ENTRY_BYTES !== 0) bad(`${sid} has ${b.byteLength} bytes of MSRs, not a multiple of ${MSR_ENTRY_BYTES}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Array<{ index: number; data: bigint }> = [];
  for (let o = 0; o < b.byteLength; o += MSR_ENTRY_BYTES) out.push({ index: dv.getUint32(o, true), data: dv.getBigUint64(o + 8, true) });
  return out;
}

/**
 * Encodes a VM's state in `formatVersion` (the newest the reader takes; see newestCommonFormat);
 * throws a StateFormatError for state decodeVmState would refuse.
 */
export function encodeVmState(id: VmStateIdentity, s: VmStateData, formatVersion = COMPAT_FORMAT_VERSION): Uint8Array {
  checkWritable(id, s);
  const sections: Record<string, StateSection> = {
    vm: section(1, { name: id.name, memMib: id.memMib, vcpuCount: s.kvm.vcpus.length }),
    pit: section(1, { kvm: s.kvm.pit }),
    clock: section(1, { kvm: s.kvm.clock }),
  };
  IRQCHIPS.forEach((sid, i) => { sections[sid] = section(1, { kvm: s.kvm.irqchip[i]! }); });
  const binary = formatVersion >= 2;
  for (const c of s.kvm.vcpus) {
    sections[`vcpus/${c.id}`] = section(binary ? 2 : 1, {
      mpState: c.mpState, regs: c.regs, sregs: c.sregs, xsave: c.xsave, xcrs: c.xcrs, lapic: c.lapic,
      events: c.events, debugregs: c.debugregs,
      // MSR values are 64-bit: in JSON hex strings, so no precision is lost.
      msrs: binary ? msrsToBlob(c.msrs) : c.msrs.map((m) => ({ index: m.index, data: `0x${m.data.toString(16)}` })),
    });
  }
  for (const [sid, key] of DEVICES) sections[sid] = section(1, s.devices[key] as unknown as StateObject);
  for (const [id, d] of Object.entries(s.virtio ?? {})) {
    if (!/^[A-Za-z0-9._-]{1,32}$/.test(id)) unwritable(`virtio device id "${id}" is not valid`);
    sections[VIRTIO_SECTION_PREFIX + id] = section(1, { kind: d.kind, slot: d.slot, transport: d.transport as StateObject });
  }
  const bytes = encodeEnvelope(StateKind.VmState, { sections }, formatVersion);
  if (bytes.byteLength > MAX_VM_STATE_BYTES) {
    throw new StateFormatError('ERR_STATE_OVERSIZED', `VM state: ${bytes.byteLength} bytes is over the ${MAX_VM_STATE_BYTES} the next instance accepts; refusing to write it`);
  }
  return bytes;
}

function bad(message: string): never {
  throw new StateFormatError('ERR_STATE_CONTENT', `VM state: ${message}; the sending instance wrote something this build cannot restore`);
}

function need(tree: StateTree, id: string) {
  const s = readSection(tree, id);
  if (!s) bad(`section ${id} is missing`);
  if (s.version < 1) bad(`section ${id} has version ${s.version}`);
  return s;
}

function blob(tree: StateTree, id: string, field = 'kvm'): Uint8Array {
  const b = need(tree, id).bytes(field, new Uint8Array(0));
  if (b.byteLength === 0) bad(`section ${id} has no ${field} bytes`);
  return b;
}

function deviceFields(tree: StateTree, id: string): unknown {
  const s = tree.sections[id];
  if (!s) bad(`section ${id} is missing`);
  return s.f as unknown;
}

export function decodeVmState(bytes: Uint8Array): { id: VmStateIdentity; state: VmStateData } {
  const { content: tree } = decodeEnvelope(bytes, { expectKind: StateKind.VmState, maxBytes: MAX_VM_STATE_BYTES });
  const vm = need(tree, 'vm');
  const vcpuCount = vm.number('vcpuCount', 0);
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1 || vcpuCount > MAX_VCPUS) bad(`vcpuCount ${vcpuCount} is out of range`);
  const vcpus: VcpuStateData[] = [];
  for (let id = 0; id < vcpuCount; id++) {
    const sid = `vcpus/${id}`;
    const c = need(tree, sid);
    // v2 sections carry the MSRs as one blob, v1 sections as a list: the field's type says which.
    const rawMsrs = tree.sections[sid]!.f['msrs'];
    const msrs = rawMsrs instanceof Uint8Array ? msrsFromBlob(rawMsrs, sid) : c.objects('msrs').map((m) => {
      const data = m.string('data', '');
      if (!/^0x[0-9a-f]{1,16}$/.test(data)) bad(`${sid} has an MSR value "${data}" that is not a 64-bit hex number`);
      const index = m.number('index', -1);
      if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) bad(`${sid} has an MSR index ${index}`);
      return { index, data: BigInt(data) };
    });
    const mpState = c.number('mpState', Number.NaN); // NaN: missing (JSON has no NaN)
    if (!isU32(mpState)) bad(`${sid} has ${Number.isNaN(mpState) ? 'no mpState' : `an mpState ${mpState} that is not a u32`}`);
    vcpus.push({
      id, mpState, msrs,
      regs: blob(tree, sid, 'regs'), sregs: blob(tree, sid, 'sregs'), xsave: blob(tree, sid, 'xsave'),
      xcrs: blob(tree, sid, 'xcrs'), lapic: blob(tree, sid, 'lapic'), events: blob(tree, sid, 'events'),
      debugregs: blob(tree, sid, 'debugregs'),
    });
  }
  const devices = Object.fromEntries(DEVICES.map(([sid, key]) => [key, deviceFields(tree, sid)])) as VmStateData['devices'];
  const virtio = decodeVirtio(tree);
  const name = vm.string('name', '');
  if (name === '') bad('the vm section has no name');
  const memMib = vm.number('memMib', Number.NaN);
  if (!isMemMib(memMib)) bad(Number.isNaN(memMib) ? 'the vm section has no memMib' : `memMib ${memMib} is not a positive integer`);
  return {
    id: { name, memMib },
    state: {
      kvm: { vcpus, irqchip: IRQCHIPS.map((sid) => blob(tree, sid)), pit: blob(tree, 'pit'), clock: blob(tree, 'clock') },
      devices,
      ...(virtio ? { virtio } : {}),
    },
  };
}

function decodeVirtio(tree: StateTree): Record<string, VirtioSlotStateData> | undefined {
  const ids = Object.keys(tree.sections).filter((k) => k.startsWith(VIRTIO_SECTION_PREFIX));
  if (ids.length === 0) return undefined;
  if (ids.length > MAX_VIRTIO_SLOTS) bad(`${ids.length} virtio devices is over ${MAX_VIRTIO_SLOTS}`);
  const out: Record<string, VirtioSlotStateData> = {};
  for (const sid of ids) {
    const s = need(tree, sid);
    const id = sid.slice(VIRTIO_SECTION_PREFIX.length);
    const kind = s.string('kind', '');
    if (!VIRTIO_KINDS.includes(kind)) bad(`section ${sid} has an unknown virtio kind "${kind}"`);
    const slot = s.number('slot', -1);
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_VIRTIO_SLOTS) bad(`section ${sid} has a slot ${slot} outside 0..${MAX_VIRTIO_SLOTS - 1}`);
    const transport: unknown = tree.sections[sid]!.f['transport'];
    if (typeof transport !== 'object' || transport === null || Array.isArray(transport)) bad(`section ${sid} has no transport state`);
    Object.defineProperty(out, id, { value: { kind: kind as VirtioKindData, slot, transport }, enumerable: true });
  }
  return out;
}

