// Writes test/golden/vm-state-v1.bin: a VM state (format 1) from fixed synthetic data, so that
// every later build can prove it still reads what this one wrote. Run it only to create the file
// for format 1; never to refresh it (see README.md). vm-state.test.ts imports the same data.
//
//   npx tsc -p tsconfig.json && node dist/test/golden/generate-vm-state-v1.js

import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type VmStateData, type VmStateIdentity, encodeVmState } from '../../src/state/vm-state.js';

/** Deterministic bytes: the same for a given length and seed on every build. */
export function goldenBytes(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export const GOLDEN_VM_STATE_V1_ID: VmStateIdentity = { name: 'golden-v1', memMib: 256 };

/** KVM struct sizes on x86_64 (kvm_regs, kvm_sregs, kvm_xsave, ...), as the real capture has them. */
export const KVM_SIZES = {
  regs: 144, sregs: 312, xsave: 4096, xcrs: 392, lapic: 1024, events: 64, debugregs: 128, irqchip: 520, pit: 112, clock: 48,
} as const;

export function goldenVmStateV1(): VmStateData {
  const vcpu = (id: number): VmStateData['kvm']['vcpus'][number] => ({
    id,
    mpState: id === 0 ? 0 : 2, // KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_HALTED
    regs: goldenBytes(KVM_SIZES.regs, 100 + id),
    sregs: goldenBytes(KVM_SIZES.sregs, 200 + id),
    xsave: goldenBytes(KVM_SIZES.xsave, 300 + id),
    xcrs: goldenBytes(KVM_SIZES.xcrs, 400 + id),
    lapic: goldenBytes(KVM_SIZES.lapic, 500 + id),
    events: goldenBytes(KVM_SIZES.events, 600 + id),
    debugregs: goldenBytes(KVM_SIZES.debugregs, 700 + id),
    msrs: [
      { index: 0x10, data: 0x0000_1234_5678_9abcn + BigInt(id) }, // IA32_TSC
      { index: 0x1b, data: 0xfee0_0900n }, // IA32_APIC_BASE
      { index: 0xc000_0080, data: 0xd01n }, // EFER
      { index: 0xc000_0100, data: 0xffff_ffff_ffff_ffffn }, // FS_BASE, every bit set
      { index: 0xc000_0102, data: 0x8000_0000_0000_0000n }, // KERNEL_GS_BASE, top bit only
      { index: 0x4b56_4d01, data: 0n }, // MSR_KVM_SYSTEM_TIME_NEW
      { index: 0xffff_ffff, data: 1n }, // the highest index
    ],
  });
  return {
    kvm: {
      vcpus: [vcpu(0), vcpu(1)],
      irqchip: [goldenBytes(KVM_SIZES.irqchip, 800), goldenBytes(KVM_SIZES.irqchip, 801), goldenBytes(KVM_SIZES.irqchip, 802)],
      pit: goldenBytes(KVM_SIZES.pit, 900),
      clock: goldenBytes(KVM_SIZES.clock, 901),
    },
    devices: {
      serial0: {
        ier: 0x05, lcr: 0x03, mcr: 0x0b, scr: 0x5a, fcr: 0xc1, dll: 0x01, dlm: 0x00, overrun: true, thrEmptyPending: false,
        rxFifo: [0x6c, 0x73, 0x0a, 0x00, 0xff],
      },
      i8042: { commandByte: 0x47, outputByte: 0xfa, outputFull: true, pendingCommand: 0xd1, lastWriteWasCommand: false, outputPort: 0x03 },
      rtc: { cmos: Array.from(goldenBytes(128, 1000)), index: 0x0b, nmiDisabled: true },
      debugExit: {},
    },
  };
}

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root (no package.json above this script)');
    dir = up;
  }
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = path.join(repoRoot(), 'test', 'golden', 'vm-state-v1.bin');
  if (existsSync(out) && !process.argv.includes('--force')) {
    process.stderr.write(`${out} exists: golden files of a released format are never regenerated; add a new one instead\n`);
    process.exit(1);
  }
  writeFileSync(out, encodeVmState(GOLDEN_VM_STATE_V1_ID, goldenVmStateV1()));
  process.stdout.write(`wrote ${out}\n`);
}
