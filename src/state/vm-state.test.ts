// The VM state codec: round trips at real KVM struct sizes and with device states taken from the
// real devices (and restored by them), random content, every rejection a reader owes (missing
// sections, wrong kind, vCPU counts, MSR values, truncated or damaged envelopes), tolerance of
// unknown sections and fields, and the format-1 golden file decoded by HEAD.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  GOLDEN_VM_STATE_V1_ID, KVM_SIZES, goldenBytes, goldenVmStateV1,
} from '../../test/golden/generate-vm-state-v1.js';
import { GOLDEN_VM_STATE_V2_ID } from '../../test/golden/generate-vm-state-v2.js';
import type { ByteSink, IrqLine, WallClock } from '../devices/device.js';
import { CmosRtc } from '../devices/legacy/cmos-rtc.js';
import { DebugExit } from '../devices/legacy/debug-exit.js';
import { I8042 } from '../devices/legacy/i8042.js';
import { Serial16550 } from '../devices/legacy/serial-16550.js';
import { CURRENT_FORMAT_VERSION, ENVELOPE_HEADER_BYTES, StateKind, decodeEnvelope, encodeEnvelope } from './envelope.js';
import { StateFormatError, type StateFormatErrorCode } from './errors.js';
import type { StateObject, StateSection, StateTree, StateValue } from './tree.js';
import { MAX_VM_STATE_BYTES, type VcpuStateData, type VmStateData, decodeVmState, encodeVmState } from './vm-state.js';

const ID = { name: 'web-1', memMib: 512 };
const U64_MAX = (1n << 64n) - 1n;

const quiet: IrqLine & ByteSink & WallClock = { setLevel() {}, pulse() {}, write() {}, nowMs: () => Date.UTC(2026, 10, 30, 12, 0, 0) };

/** Device states as the real devices save them, after a guest has touched their registers. */
function realDevices(): VmStateData['devices'] {
  const uart = new Serial16550({ irq: quiet, sink: quiet });
  uart.pioWrite(3, new Uint8Array([0x83])); // LCR: DLAB, 8 bits
  uart.pioWrite(0, new Uint8Array([0x01])); // DLL: 115200 baud
  uart.pioWrite(3, new Uint8Array([0x03])); // LCR: 8N1
  uart.pioWrite(2, new Uint8Array([0xc7])); // FCR: enable and clear FIFOs, trigger 14
  uart.pioWrite(1, new Uint8Array([0x05])); // IER: RDI | RLSI
  uart.pioWrite(7, new Uint8Array([0x5a])); // SCR
  const kbd = new I8042({ onReset: () => {} });
  kbd.pioWrite(4, new Uint8Array([0x60])); // "write command byte" pending
  const rtc = new CmosRtc({ clock: quiet });
  rtc.pioWrite(0, new Uint8Array([0x8b])); // select register B, NMI disabled
  return { serial0: uart.saveState(), i8042: kbd.saveState(), rtc: rtc.saveState(), debugExit: new DebugExit({ onExit: () => {} }).saveState() };
}

function vcpu(id: number, seed = id): VcpuStateData {
  return {
    id, mpState: 0,
    regs: goldenBytes(KVM_SIZES.regs, seed * 10 + 1), sregs: goldenBytes(KVM_SIZES.sregs, seed * 10 + 2),
    xsave: goldenBytes(KVM_SIZES.xsave, seed * 10 + 3), xcrs: goldenBytes(KVM_SIZES.xcrs, seed * 10 + 4),
    lapic: goldenBytes(KVM_SIZES.lapic, seed * 10 + 5), events: goldenBytes(KVM_SIZES.events, seed * 10 + 6),
    debugregs: goldenBytes(KVM_SIZES.debugregs, seed * 10 + 7),
    msrs: [
      { index: 0x10, data: 0x1234_5678_9abc_def0n }, { index: 0xc000_0080, data: 0xd01n },
      { index: 0xc000_0100, data: 0xffff_ffff_ffff_ffffn }, { index: 0x174, data: 0n },
    ],
  };
}

function realistic(vcpuCount = 2): VmStateData {
  return {
    kvm: {
      vcpus: Array.from({ length: vcpuCount }, (_, i) => vcpu(i)),
      irqchip: [0, 1, 2].map((i) => goldenBytes(KVM_SIZES.irqchip, 90 + i)),
      pit: goldenBytes(KVM_SIZES.pit, 95), clock: goldenBytes(KVM_SIZES.clock, 96),
    },
    devices: realDevices(),
  };
}

/** The tree inside encoded VM state, to edit and re-encode. */
function treeOf(bytes: Uint8Array): { sections: Record<string, StateSection> } {
  return { sections: { ...decodeEnvelope(bytes, { expectKind: StateKind.VmState }).content.sections } };
}

function withSection(tree: StateTree, id: string, f: (fields: StateObject) => StateObject, v?: number): StateTree {
  const s = tree.sections[id];
  assert.ok(s, `no section ${id}`);
  return { sections: { ...tree.sections, [id]: { v: v ?? s.v, f: f(s.f) } } };
}

const vmState = (tree: StateTree): Uint8Array => encodeEnvelope(StateKind.VmState, tree);

function rejects(bytes: Uint8Array, code: StateFormatErrorCode, message?: RegExp): StateFormatError {
  let caught: unknown;
  try {
    decodeVmState(bytes);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StateFormatError, `expected StateFormatError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

function rejectsSomehow(bytes: Uint8Array): void {
  let caught: unknown;
  try {
    decodeVmState(bytes);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StateFormatError && caught.code.startsWith('ERR_STATE_'), `got ${String(caught)}`);
}

const byteBlob = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const randomVcpu = (id: number): fc.Arbitrary<VcpuStateData> => fc.record({
  id: fc.constant(id), mpState: fc.integer({ min: 0, max: 9 }),
  regs: byteBlob(1, 200), sregs: byteBlob(1, 400), xsave: byteBlob(1, 600), xcrs: byteBlob(1, 400),
  lapic: byteBlob(1, 300), events: byteBlob(1, 80), debugregs: byteBlob(1, 140),
  msrs: fc.array(fc.record({ index: fc.integer({ min: 0, max: 0xffffffff }), data: u64 }), { maxLength: 12 }),
});
const byte = fc.integer({ min: 0, max: 255 });
const randomState: fc.Arbitrary<{ id: { name: string; memMib: number }; state: VmStateData }> = fc.record({
  id: fc.record({ name: fc.string({ minLength: 1, maxLength: 30 }), memMib: fc.integer({ min: 1, max: 1 << 20 }) }),
  state: fc.record({
    kvm: fc.record({
      vcpus: fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => randomVcpu(i)))),
      irqchip: fc.tuple(byteBlob(1, 600), byteBlob(1, 600), byteBlob(1, 600)),
      pit: byteBlob(1, 200), clock: byteBlob(1, 64),
    }),
    devices: fc.record({
      serial0: fc.record({
        ier: byte, lcr: byte, mcr: byte, scr: byte, fcr: byte, dll: byte, dlm: byte, overrun: fc.boolean(),
        thrEmptyPending: fc.boolean(), rxFifo: fc.array(byte, { maxLength: 300 }),
      }),
      i8042: fc.record({
        commandByte: byte, outputByte: byte, outputFull: fc.boolean(), pendingCommand: fc.constantFrom(0, 0x60, 0xd1),
        lastWriteWasCommand: fc.boolean(), outputPort: byte,
      }),
      rtc: fc.record({ cmos: fc.array(byte, { minLength: 128, maxLength: 128 }), index: fc.integer({ min: 0, max: 127 }), nmiDisabled: fc.boolean() }),
      debugExit: fc.constant({} as Record<string, never>),
    }),
  }),
});

describe('vm-state: round trips', () => {
  it('a realistic two-vCPU state comes back field for field', () => {
    const state = realistic(2);
    const bytes = encodeVmState(ID, state);
    const back = decodeVmState(bytes);
    assert.deepEqual(back, { id: ID, state });
    assert.equal(back.state.kvm.vcpus[0]!.xsave.length, 4096);
    assert.equal(back.state.kvm.vcpus[1]!.msrs[2]!.data, 0xffff_ffff_ffff_ffffn, 'a full 64-bit MSR keeps every bit');
    assert.deepEqual(encodeVmState(ID, state), bytes, 'encoding is deterministic');
  });

  it('the device states restore into working devices on the other side', () => {
    const { state } = decodeVmState(encodeVmState(ID, realistic(1)));
    const uart = Serial16550.restore({ irq: quiet, sink: quiet }, state.devices.serial0);
    assert.deepEqual(uart.saveState(), realDevices().serial0);
    const kbd = I8042.restore({ onReset: () => {} }, state.devices.i8042);
    assert.equal(kbd.saveState().pendingCommand, 0x60);
    const rtc = CmosRtc.restore({ clock: quiet }, state.devices.rtc);
    assert.deepEqual(rtc.saveState(), realDevices().rtc);
    DebugExit.restore({ onExit: () => {} }, state.devices.debugExit);
  });

  it('32 vCPUs and a full 64 KiB UART FIFO fit under MAX_VM_STATE_BYTES', () => {
    const state = realistic(32);
    state.devices.serial0 = { ...state.devices.serial0, rxFifo: Array.from(goldenBytes(64 * 1024, 7)) };
    const bytes = encodeVmState(ID, state);
    assert.ok(bytes.length < MAX_VM_STATE_BYTES, `${bytes.length} bytes`);
    assert.deepEqual(decodeVmState(bytes).state, state);
  });

  it('random content round trips', () => {
    fc.assert(fc.property(randomState, ({ id, state }) => {
      assert.deepEqual(decodeVmState(encodeVmState(id, state)), { id, state });
    }), { numRuns: 300 });
  });
});

describe('vm-state: rejections', () => {
  const good = encodeVmState(ID, realistic(2));
  const tree = treeOf(good);

  it('every required section missing is refused, naming the section', () => {
    const required = ['vm', 'vcpus/0', 'vcpus/1', 'irqchip/pic-master', 'irqchip/pic-slave', 'irqchip/ioapic', 'pit', 'clock',
      'devices/serial0', 'devices/i8042', 'devices/rtc', 'devices/debug-exit'];
    for (const id of required) {
      const sections = { ...tree.sections };
      delete sections[id];
      rejects(vmState({ sections }), 'ERR_STATE_CONTENT', new RegExp(`section ${id.replace('/', '\\/')} is missing`));
    }
  });

  it('another kind of state is refused', () => {
    let caught: unknown;
    try {
      decodeVmState(encodeEnvelope(StateKind.PlatformRecord, tree));
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof StateFormatError && caught.code === 'ERR_STATE_KIND', String(caught));
  });

  it('vcpuCount 0, 33, negative, fractional or missing is refused; a string is a type error', () => {
    for (const n of [0, 33, -1, 1.5, 1e9]) {
      rejects(vmState(withSection(tree, 'vm', (f) => ({ ...f, vcpuCount: n }))), 'ERR_STATE_CONTENT', new RegExp(`vcpuCount ${n} is out of range`));
    }
    rejects(vmState(withSection(tree, 'vm', ({ vcpuCount: _, ...f }) => f)), 'ERR_STATE_CONTENT', /vcpuCount 0/);
    rejects(vmState(withSection(tree, 'vm', (f) => ({ ...f, vcpuCount: '2' }))), 'ERR_STATE_CONTENT', /vm\.vcpuCount should be a number/);
  });

  it('a vcpuCount larger than the vCPU sections present is refused', () => {
    rejects(vmState(withSection(tree, 'vm', (f) => ({ ...f, vcpuCount: 3 }))), 'ERR_STATE_CONTENT', /vcpus\/2 is missing/);
  });

  it('a vm section without a name is refused', () => {
    rejects(vmState(withSection(tree, 'vm', ({ name: _, ...f }) => f)), 'ERR_STATE_CONTENT', /no name/);
    rejects(vmState(withSection(tree, 'vm', (f) => ({ ...f, name: '' }))), 'ERR_STATE_CONTENT', /no name/);
  });

  it('memMib missing, zero, negative, fractional, unsafe or a string is refused', () => {
    rejects(vmState(withSection(tree, 'vm', ({ memMib: _, ...f }) => f)), 'ERR_STATE_CONTENT', /vm section has no memMib/);
    for (const m of [0, -5.5, -1, 1.5, 2 ** 53]) {
      rejects(vmState(withSection(tree, 'vm', (f) => ({ ...f, memMib: m }))), 'ERR_STATE_CONTENT', new RegExp(`memMib ${m} is not a positive integer`));
    }
    rejects(vmState(withSection(tree, 'vm', (f) => ({ ...f, memMib: '512' }))), 'ERR_STATE_CONTENT', /vm\.memMib should be a number/);
    assert.deepEqual(decodeVmState(vmState(withSection(tree, 'vm', (f) => ({ ...f, memMib: 1 })))).id, { name: ID.name, memMib: 1 });
  });

  it('an mpState that is missing or not a u32 is refused', () => {
    rejects(vmState(withSection(tree, 'vcpus/1', ({ mpState: _, ...f }) => f)), 'ERR_STATE_CONTENT', /vcpus\/1 has no mpState/);
    for (const m of [-1, 1.5, 2 ** 32, -0.5]) {
      rejects(vmState(withSection(tree, 'vcpus/1', (f) => ({ ...f, mpState: m }))), 'ERR_STATE_CONTENT', new RegExp(`vcpus/1 has an mpState ${m} that is not a u32`));
    }
    rejects(vmState(withSection(tree, 'vcpus/0', (f) => ({ ...f, mpState: '0' }))), 'ERR_STATE_CONTENT', /should be a number/);
    assert.equal(decodeVmState(vmState(withSection(tree, 'vcpus/1', (f) => ({ ...f, mpState: 0xffffffff })))).state.kvm.vcpus[1]!.mpState, 0xffffffff);
  });

  it('MSR values that are not lower-case 64-bit hex, and bad MSR indexes, are refused', () => {
    const msrs = (m: StateValue): Uint8Array => vmState(withSection(tree, 'vcpus/1', (f) => ({ ...f, msrs: [m] })));
    for (const data of ['', '0x', 'ff', '0XFF', '0xFF', '0x1g', '-0x1', '0x-1', ' 0x1', '0x1 ', `0x1${'0'.repeat(16)}`, '12']) {
      rejects(msrs({ index: 0x10, data }), 'ERR_STATE_CONTENT', /vcpus\/1 has an MSR value/);
    }
    rejects(msrs({ index: 0x10 }), 'ERR_STATE_CONTENT', /MSR value ""/);
    rejects(msrs({ index: 0x10, data: 255 }), 'ERR_STATE_CONTENT', /should be a string/);
    for (const index of [-1, 2 ** 32, 1.5]) rejects(msrs({ index, data: '0x1' }), 'ERR_STATE_CONTENT', /MSR index/);
    rejects(msrs({ data: '0x1' }), 'ERR_STATE_CONTENT', /MSR index -1/);
    rejects(vmState(withSection(tree, 'vcpus/0', (f) => ({ ...f, msrs: 'none' }))), 'ERR_STATE_CONTENT');
    rejects(vmState(withSection(tree, 'vcpus/0', (f) => ({ ...f, msrs: [1] }))), 'ERR_STATE_CONTENT');
  });

  it('a KVM blob that is missing, empty or not bytes is refused', () => {
    for (const field of ['regs', 'sregs', 'xsave', 'xcrs', 'lapic', 'events', 'debugregs']) {
      rejects(vmState(withSection(tree, 'vcpus/0', ({ [field]: _, ...f }) => f)), 'ERR_STATE_CONTENT', new RegExp(`vcpus/0 has no ${field} bytes`));
      rejects(vmState(withSection(tree, 'vcpus/0', (f) => ({ ...f, [field]: new Uint8Array(0) }))), 'ERR_STATE_CONTENT');
      rejects(vmState(withSection(tree, 'vcpus/0', (f) => ({ ...f, [field]: 'AAAA' }))), 'ERR_STATE_CONTENT', /should be bytes/);
    }
    for (const id of ['pit', 'clock', 'irqchip/ioapic']) {
      rejects(vmState(withSection(tree, id, () => ({}))), 'ERR_STATE_CONTENT', /has no kvm bytes/);
    }
  });

  it('every cut of an envelope is refused as truncated', () => {
    const small = encodeVmState({ name: 'cut', memMib: 1 }, {
      ...realistic(1),
      kvm: { ...realistic(1).kvm, vcpus: [{ ...vcpu(0), xsave: goldenBytes(64, 1), lapic: goldenBytes(64, 2) }] },
    });
    for (let cut = 0; cut < small.length; cut++) rejects(small.subarray(0, cut), 'ERR_STATE_TRUNCATED');
  });

  it('cuts of the realistic envelope are refused as truncated', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: good.length - 1 }), (cut) => {
      rejects(good.subarray(0, cut), 'ERR_STATE_TRUNCATED');
    }), { numRuns: 300 });
  });

  it('a bit flip anywhere but the reserved header word is refused', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: good.length * 8 - 1 }), (bit) => {
      fc.pre((bit >> 3) < 28 || (bit >> 3) >= 32);
      const bad = good.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      if ((bit >> 3) >= ENVELOPE_HEADER_BYTES) rejects(bad, 'ERR_STATE_CHECKSUM');
      else rejectsSomehow(bad);
    }), { numRuns: 2000 });
  });

  it('the reserved header word is ignored, as format 1 says', () => {
    const bad = good.slice();
    bad[29] = 0xff;
    assert.equal(decodeVmState(bad).id.name, ID.name);
  });

  it('random bytes, and random bytes behind a valid header, are refused with a StateFormatError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (junk, withHeader) => {
      const bytes = withHeader ? new Uint8Array([...good.subarray(0, ENVELOPE_HEADER_BYTES), ...junk]) : junk;
      rejectsSomehow(bytes);
    }), { numRuns: 1000 });
  });

  it('an envelope over MAX_VM_STATE_BYTES is refused as oversized', () => {
    const huge = vmState({ sections: { ...tree.sections, 'future/padding': { v: 1, f: { pad: 'x'.repeat(MAX_VM_STATE_BYTES) } } } });
    rejects(huge, 'ERR_STATE_OVERSIZED');
  });

  it('random edits of section fields give a StateFormatError or a decoded state, never another exception', () => {
    const ids = Object.keys(tree.sections);
    const value: fc.Arbitrary<StateValue> = fc.oneof(
      fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 20 }),
      fc.uint8Array({ maxLength: 20 }), fc.array(fc.integer(), { maxLength: 3 }), fc.constant([{ index: 1, data: 7 }]),
    );
    fc.assert(fc.property(fc.constantFrom(...ids), fc.string({ maxLength: 12 }), fc.nat(), value, fc.boolean(), (id, field, pick, v, known) => {
      const keys = Object.keys(tree.sections[id]!.f);
      const name = known && keys.length > 0 ? keys[pick % keys.length]! : field;
      let caught: unknown;
      try {
        decodeVmState(vmState(withSection(tree, id, (f) => ({ ...f, [name]: Object.is(v, -0) ? 0 : v }))));
      } catch (e) {
        caught = e;
      }
      assert.ok(caught === undefined || caught instanceof StateFormatError, String(caught));
    }), { numRuns: 1000 });
  });
});

describe('vm-state: tolerance', () => {
  const state = realistic(2);
  const tree = treeOf(encodeVmState(ID, state));

  it('unknown sections, unknown fields and newer section versions are ignored', () => {
    let t: StateTree = { sections: { ...tree.sections, 'devices/virtio-net0': { v: 3, f: { mac: '02:00:00:00:00:01' } }, 'future/numa': { v: 1, f: { nodes: [0, 1] } } } };
    t = withSection(t, 'vm', (f) => ({ ...f, cpuModel: 'host', hugepages: true }), 2);
    t = withSection(t, 'vcpus/0', (f) => ({ ...f, nested: new Uint8Array([1, 2, 3]), msrs: [{ index: 0x10, data: '0x5', flags: 1 }] }), 7);
    t = withSection(t, 'pit', (f) => ({ ...f, speaker: { on: false } }));
    t = withSection(t, 'devices/serial0', (f) => ({ ...f, fifoTrigger: 14 }));
    const back = decodeVmState(vmState(t));
    assert.deepEqual(back.id, ID);
    assert.deepEqual(back.state.kvm.vcpus[0]!.msrs, [{ index: 0x10, data: 5n }]);
    assert.deepEqual(back.state.kvm.vcpus[1], state.kvm.vcpus[1]);
    assert.deepEqual(back.state.kvm.pit, state.kvm.pit);
    // Device sections pass through whole; the device's restore reads its fields and skips the rest.
    const uart = Serial16550.restore({ irq: quiet, sink: quiet }, back.state.devices.serial0);
    assert.deepEqual(uart.saveState(), state.devices.serial0);
  });

  it('vCPU sections beyond vcpuCount are ignored', () => {
    const t = { sections: { ...tree.sections, 'vcpus/2': tree.sections['vcpus/1']! } };
    assert.equal(decodeVmState(vmState(t)).state.kvm.vcpus.length, 2);
  });
});

describe('vm-state: golden files', () => {
  // This file runs from dist/src/state/; the golden files stay in the source tree's test/golden/.
  const golden = readFileSync(fileURLToPath(new URL('../../../test/golden/vm-state-v1.bin', import.meta.url)));

  it('vm-state-v1.bin is the file written for format 1, unchanged', () => {
    assert.equal(createHash('sha256').update(golden).digest('hex'), '49b13770ee4ad535a41faee841f06b5c31964f0f78df847c3b605a22a09cbba8',
      'golden files are never regenerated: add vm-state-v<N>.bin for a new format instead');
  });

  it('HEAD decodes vm-state-v1.bin (format 1) field for field', () => {
    const { id, state } = decodeVmState(golden);
    assert.deepEqual(id, { name: 'golden-v1', memMib: 256 });
    assert.equal(state.kvm.vcpus.length, 2);
    const [c0, c1] = state.kvm.vcpus as [VcpuStateData, VcpuStateData];
    assert.deepEqual([c0.id, c0.mpState, c1.id, c1.mpState], [0, 0, 1, 2]);
    assert.deepEqual([c0.regs, c0.sregs, c0.xsave, c0.xcrs, c0.lapic, c0.events, c0.debugregs].map((b) => b.length), [144, 312, 4096, 392, 1024, 64, 128]);
    assert.deepEqual(c1.msrs.find((m) => m.index === 0xc000_0100)?.data, 0xffff_ffff_ffff_ffffn);
    assert.deepEqual(c1.msrs.find((m) => m.index === 0xc000_0102)?.data, 0x8000_0000_0000_0000n);
    assert.deepEqual(c1.msrs.find((m) => m.index === 0x10)?.data, 0x0000_1234_5678_9abdn);
    assert.deepEqual(c0.msrs.find((m) => m.index === 0xffff_ffff)?.data, 1n);
    assert.deepEqual(state.kvm.irqchip.map((b) => b.length), [520, 520, 520]);
    assert.deepEqual([state.kvm.pit.length, state.kvm.clock.length], [112, 48]);
    assert.deepEqual(state.devices.serial0, {
      ier: 0x05, lcr: 0x03, mcr: 0x0b, scr: 0x5a, fcr: 0xc1, dll: 0x01, dlm: 0x00, overrun: true, thrEmptyPending: false,
      rxFifo: [0x6c, 0x73, 0x0a, 0x00, 0xff],
    });
    assert.deepEqual(state.devices.i8042, { commandByte: 0x47, outputByte: 0xfa, outputFull: true, pendingCommand: 0xd1, lastWriteWasCommand: false, outputPort: 0x03 });
    assert.equal(state.devices.rtc.index, 0x0b);
    assert.equal(state.devices.rtc.cmos.length, 128);
    assert.deepEqual(state.devices.debugExit, {});
    // Every byte of every blob, against the generator's data.
    assert.deepEqual({ id, state }, { id: GOLDEN_VM_STATE_V1_ID, state: goldenVmStateV1() });
    // And the devices of this build still restore what format 1 saved.
    Serial16550.restore({ irq: quiet, sink: quiet }, state.devices.serial0);
    I8042.restore({ onReset: () => {} }, state.devices.i8042);
    CmosRtc.restore({ clock: quiet }, state.devices.rtc);
  });

  const golden2 = readFileSync(fileURLToPath(new URL('../../../test/golden/vm-state-v2.bin', import.meta.url)));

  it('vm-state-v2.bin is the file written for format 2, unchanged, and HEAD decodes it to the same state as v1', () => {
    assert.equal(createHash('sha256').update(golden2).digest('hex'), 'e95bff6a1df5347679602ce9f30970acdf8c06328ac89910ac0c7619ea688e08',
      'golden files are never regenerated: add vm-state-v<N>.bin for a new format instead');
    assert.equal(new DataView(golden2.buffer, golden2.byteOffset).getUint16(8, true), 2);
    assert.deepEqual(decodeVmState(new Uint8Array(golden2)), { id: GOLDEN_VM_STATE_V2_ID, state: goldenVmStateV1() });
  });

  it('asked for format 2, it writes vm-state-v2.bin byte for byte', () => {
    assert.deepEqual(encodeVmState(GOLDEN_VM_STATE_V2_ID, goldenVmStateV1(), 2), new Uint8Array(golden2));
  });

  it('asked for format 1 (a reader of the previous version), it writes the golden file byte for byte', () => {
    assert.deepEqual(encodeVmState(GOLDEN_VM_STATE_V1_ID, goldenVmStateV1(), 1), new Uint8Array(golden));
  });
});

describe('vm-state: the writer', () => {
  const withVcpu0 = (patch: Partial<VcpuStateData>): VmStateData => {
    const s = realistic(1);
    return { ...s, kvm: { ...s.kvm, vcpus: [{ ...vcpu(0), ...patch }] } };
  };

  it('refuses state its own reader would refuse, instead of handing it to the next instance', () => {
    const cases: Array<[string, VmStateData, { name: string; memMib: number }, RegExp]> = [
      ['an MSR value of 2^64', withVcpu0({ msrs: [{ index: 0x10, data: 1n << 64n }] }), ID, /MSR 0x10 has a value 18446744073709551616 outside 0\.\.2\^64-1/],
      ['a negative MSR value', withVcpu0({ msrs: [{ index: 0x10, data: -1n }] }), ID, /outside 0\.\.2\^64-1/],
      ['an MSR value that is a number', withVcpu0({ msrs: [{ index: 0x10, data: 5 as unknown as bigint }] }), ID, /outside/],
      ['an MSR index of 2^32', withVcpu0({ msrs: [{ index: 2 ** 32, data: 1n }] }), ID, /MSR index 4294967296 that is not a u32/],
      ['a negative MSR index', withVcpu0({ msrs: [{ index: -1, data: 1n }] }), ID, /MSR index -1/],
      ['33 vCPUs', realistic(33), ID, /vcpuCount 33 is out of range \(1\.\.32\)/],
      ['no vCPUs', { ...realistic(1), kvm: { ...realistic(1).kvm, vcpus: [] } }, ID, /vcpuCount 0 is out of range/],
      ['vCPU ids not 0..n-1', { ...realistic(2), kvm: { ...realistic(2).kvm, vcpus: [vcpu(1), vcpu(0)] } }, ID, /vCPU 0 has id 1/],
      ['an mpState of -1', withVcpu0({ mpState: -1 }), ID, /mpState -1 that is not a u32/],
      ['a fractional mpState', withVcpu0({ mpState: 0.5 }), ID, /mpState 0\.5/],
      ['an empty xsave', withVcpu0({ xsave: new Uint8Array(0) }), ID, /vcpus\/0 has no xsave bytes/],
      ['no lapic', withVcpu0({ lapic: undefined as unknown as Uint8Array }), ID, /no lapic bytes/],
      ['an empty pit', { ...realistic(1), kvm: { ...realistic(1).kvm, pit: new Uint8Array(0) } }, ID, /pit has no kvm bytes/],
      ['an empty clock', { ...realistic(1), kvm: { ...realistic(1).kvm, clock: new Uint8Array(0) } }, ID, /clock has no kvm bytes/],
      ['two irqchips', { ...realistic(1), kvm: { ...realistic(1).kvm, irqchip: realistic(1).kvm.irqchip.slice(0, 2) } }, ID, /2 irqchip states instead of 3/],
      ['an empty ioapic', { ...realistic(1), kvm: { ...realistic(1).kvm, irqchip: [...realistic(1).kvm.irqchip.slice(0, 2), new Uint8Array(0)] } }, ID, /irqchip\/ioapic has no kvm bytes/],
      ['no rtc state', { ...realistic(1), devices: { ...realistic(1).devices, rtc: undefined as unknown as VmStateData['devices']['rtc'] } }, ID, /devices\/rtc has no device state/],
      ['an empty name', realistic(1), { name: '', memMib: 1 }, /the VM has no name/],
      ['memMib 0', realistic(1), { name: 'x', memMib: 0 }, /memMib 0 is not a positive integer/],
      ['memMib -5.5', realistic(1), { name: 'x', memMib: -5.5 }, /memMib -5\.5/],
      ['memMib 2^53', realistic(1), { name: 'x', memMib: 2 ** 53 }, /memMib 9007199254740992/],
    ];
    for (const [what, state, id, message] of cases) {
      let bytes: Uint8Array | undefined;
      try {
        bytes = encodeVmState(id, state);
      } catch (e) {
        assert.ok(e instanceof StateFormatError, `${what}: ${String(e)}`);
        assert.equal(e.code, 'ERR_STATE_CONTENT', `${what}: ${e.message}`);
        assert.match(e.message, message, what);
        assert.match(e.message, /refusing to write/, what);
        continue;
      }
      assert.fail(`${what}: encodeVmState wrote ${bytes.length} bytes that decodeVmState refuses`);
    }
  });

  it('writes the edges the reader accepts: MSR values 0 and 2^64-1, index 2^32-1, 32 vCPUs, memMib 1, mpState 2^32-1', () => {
    const state = realistic(32);
    state.kvm.vcpus[31] = { ...vcpu(31), mpState: 0xffffffff, msrs: [{ index: 0xffffffff, data: 0n }, { index: 0, data: U64_MAX }] };
    const { id, state: back } = decodeVmState(encodeVmState({ name: 'e', memMib: 1 }, state));
    assert.deepEqual(id, { name: 'e', memMib: 1 });
    assert.deepEqual(back.kvm.vcpus[31], state.kvm.vcpus[31]);
  });

  it('refuses state over MAX_VM_STATE_BYTES as oversized instead of writing it', () => {
    const state = realistic(1);
    state.kvm.vcpus[0] = { ...vcpu(0), xsave: new Uint8Array(MAX_VM_STATE_BYTES) };
    assert.throws(() => encodeVmState(ID, state), (e: unknown) => {
      assert.ok(e instanceof StateFormatError, String(e));
      assert.equal(e.code, 'ERR_STATE_OVERSIZED');
      assert.match(e.message, new RegExp(`over the ${MAX_VM_STATE_BYTES}`));
      return true;
    });
  });

  it('whatever it writes from random valid state, the reader takes back', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.bigInt({ min: 0n, max: U64_MAX }), fc.integer({ min: 0, max: 0xffffffff }),
      (n, memMib, data, index) => {
        const state = realistic(n);
        state.kvm.vcpus[n - 1] = { ...vcpu(n - 1), msrs: [{ index, data }] };
        const back = decodeVmState(encodeVmState({ name: 'r', memMib }, state));
        assert.equal(back.id.memMib, memMib);
        assert.deepEqual(back.state.kvm.vcpus[n - 1]!.msrs, [{ index, data }]);
      }), { numRuns: 50 });
  });
});
