// Capture and apply the complete KVM-side state of a paused VM: every vCPU (registers, special
// registers, XSAVE, XCRs, LAPIC, MSRs including the TSC, events, MP state, debug registers), the
// irqchip (PIC master, PIC slave, IOAPIC), the PIT and the kvmclock. KVM structs stay opaque bytes.
// This is not the serialized format (state/ owns that) and it never touches guest RAM.
// Reference: Documentation/virt/kvm/api.rst (KVM_GET_*/KVM_SET_* for each).

import type { Kvm, VcpuFd, VmFd } from '../sys/kvm.js';
import * as abi from '../sys/kvm-abi.js';
import type { MsrEntry } from '../sys/kvm-structs.js';
import { MSR_IA32_TSC } from '../arch/x86_64/msrs.js';

export interface VcpuSnapshot {
  id: number;
  mpState: number;
  regs: Uint8Array;
  sregs: Uint8Array;
  xsave: Uint8Array;
  xcrs: Uint8Array;
  lapic: Uint8Array;
  msrs: MsrEntry[];
  events: Uint8Array;
  debugregs: Uint8Array;
}

export interface KvmVmSnapshot {
  vcpus: VcpuSnapshot[];
  /** KVM_GET_IRQCHIP for chip 0 (PIC master), 1 (PIC slave), 2 (IOAPIC). */
  irqchip: Uint8Array[];
  pit: Uint8Array;
  /** struct kvm_clock_data taken at the pause: clock, flags, realtime, host_tsc. */
  clock: Uint8Array;
}

export class SnapshotError extends Error {
  readonly code = 'ERR_SNAPSHOT';
}

// Layout of struct kvm_clock_data (48 bytes): 0 u64 clock | 8 u32 flags | 16 u64 realtime | 24 u64 host_tsc
const KVM_CLOCK_HOST_TSC = 1 << 3;
const CLOCK_FLAGS = 8;
const CLOCK_HOST_TSC = 24;

/** The MSRs this KVM lets us read back, probed once per process on a scratch vCPU of the first VM. */
let saveableMsrs: number[] | undefined;

export function saveableMsrIndices(kvm: Kvm, probe: VcpuFd): number[] {
  if (!saveableMsrs) {
    saveableMsrs = kvm.getMsrIndexList().filter((index) => {
      try {
        return probe.getMsrs([index]).length === 1;
      } catch {
        return false;
      }
    });
  }
  return saveableMsrs;
}

function hostTsc(clock: Uint8Array): bigint | undefined {
  const v = new DataView(clock.buffer, clock.byteOffset, clock.byteLength);
  return (v.getUint32(CLOCK_FLAGS, true) & KVM_CLOCK_HOST_TSC) !== 0 ? v.getBigUint64(CLOCK_HOST_TSC, true) : undefined;
}

/** Captures the state of a VM whose vCPUs are all out of KVM_RUN. */
export function captureKvmState(kvm: Kvm, vm: VmFd, vcpus: readonly VcpuFd[]): KvmVmSnapshot {
  const msrIndices = saveableMsrIndices(kvm, vcpus[0]!);
  const clock = vm.getClock();
  return {
    vcpus: vcpus.map((v) => ({
      id: v.id,
      mpState: v.getMpState(),
      regs: v.getRegsBytes(),
      sregs: v.getSregsBytes(),
      xsave: v.getXsave(),
      xcrs: v.getXcrs(),
      lapic: v.getLapic(),
      msrs: v.getMsrs(msrIndices),
      events: v.getVcpuEvents(),
      debugregs: v.getDebugregs(),
    })),
    irqchip: [0, 1, 2].map((chip) => vm.getIrqchip(chip)),
    pit: vm.getPit2(),
    clock,
  };
}

/** Copies a saved KVM struct into a buffer of the size this kernel uses: the ABI only grows. */
function fit(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.byteLength === size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes.subarray(0, size));
  return out;
}

/**
 * Applies a captured state to a fresh VM with the same number of vCPUs.
 *
 * Ordering requirements:
 * - the irqchip and PIT before the vCPUs' LAPICs, so pending interrupts route the same way;
 * - per vCPU: sregs before regs (mode before RIP), XSAVE and XCRs, the LAPIC before the MSRs (the TSC
 *   deadline MSR is ignored unless the LAPIC timer is in deadline mode), the TSC before the deadline
 *   (both are in the one MSR list, TSC first), then events, MP state and debug registers;
 * - the kvmclock last.
 * The guest TSC is moved forward by the host TSC time that passed since the capture, so the guest's
 * TSC keeps tracking real time: no freeze and no backward jump.
 */
export function applyKvmState(vm: VmFd, vcpus: readonly VcpuFd[], s: KvmVmSnapshot): void {
  if (s.vcpus.length !== vcpus.length) throw new SnapshotError(`state has ${s.vcpus.length} vCPUs, the VM has ${vcpus.length}`);
  for (const chip of s.irqchip) vm.setIrqchip(fit(chip, abi.SIZEOF_KVM_IRQCHIP));
  vm.setPit2(fit(s.pit, abi.SIZEOF_KVM_PIT_STATE2));
  const savedHostTsc = hostTsc(s.clock);
  const nowHostTsc = hostTsc(vm.getClock());
  const tscAdvance = savedHostTsc !== undefined && nowHostTsc !== undefined && nowHostTsc > savedHostTsc ? nowHostTsc - savedHostTsc : 0n;
  for (const [i, v] of vcpus.entries()) {
    const c = s.vcpus[i]!;
    v.setSregsBytes(fit(c.sregs, abi.SIZEOF_KVM_SREGS));
    v.setRegsBytes(fit(c.regs, abi.SIZEOF_KVM_REGS));
    v.setXsave(fit(c.xsave, abi.SIZEOF_KVM_XSAVE));
    v.setXcrs(fit(c.xcrs, abi.SIZEOF_KVM_XCRS));
    v.setLapic(fit(c.lapic, abi.SIZEOF_KVM_LAPIC_STATE));
    const msrs = c.msrs.map((m) => (m.index === MSR_IA32_TSC ? { index: m.index, data: m.data + tscAdvance } : m));
    msrs.sort((a, b) => (a.index === MSR_IA32_TSC ? -1 : b.index === MSR_IA32_TSC ? 1 : 0));
    setAllMsrs(v, msrs);
    v.setVcpuEvents(fit(c.events, abi.SIZEOF_KVM_VCPU_EVENTS));
    v.setMpState(c.mpState);
    v.setDebugregs(fit(c.debugregs, abi.SIZEOF_KVM_DEBUGREGS));
  }
  vm.setClock(fit(s.clock, abi.SIZEOF_KVM_CLOCK_DATA));
}

/** KVM_SET_MSRS stops at the first MSR it rejects: report which, rather than lose the rest silently. */
function setAllMsrs(v: VcpuFd, msrs: readonly MsrEntry[]): void {
  let done = 0;
  while (done < msrs.length) {
    const n = v.setMsrs(msrs.slice(done));
    if (n === msrs.length - done) return;
    throw new SnapshotError(`vCPU ${v.id}: KVM refused MSR 0x${msrs[done + n]!.index.toString(16)} on restore`);
  }
}
