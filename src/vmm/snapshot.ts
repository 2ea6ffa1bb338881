// Capture and apply the complete KVM-side state of a paused VM: every vCPU (registers, special
// registers, XSAVE, XCRs, LAPIC, MSRs including the TSC, events, MP state, debug registers), the
// irqchip (PIC master, PIC slave, IOAPIC), the PIT and the kvmclock. KVM structs stay opaque bytes.
// This is not the serialized format (state/ owns that) and it never touches guest RAM.
// Reference: Documentation/virt/kvm/api.rst (KVM_GET_*/KVM_SET_* for each).

import type { Kvm, VcpuFd, VmFd } from '../sys/kvm.js';
import * as abi from '../sys/kvm-abi.js';
import { type MsrEntry, decodeMsrs, encodeMsrs } from '../sys/kvm-structs.js';
import { type BatchedIoctl, IoctlBatch } from '../sys/ioctl-batch.js';
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

// The vCPU structs in the order they are read, with their sizes (mp_state and the MSRs aside).
const VCPU_GETS = [
  ['regs', abi.KVM_GET_REGS, abi.SIZEOF_KVM_REGS], ['sregs', abi.KVM_GET_SREGS, abi.SIZEOF_KVM_SREGS],
  ['xsave', abi.KVM_GET_XSAVE, abi.SIZEOF_KVM_XSAVE], ['xcrs', abi.KVM_GET_XCRS, abi.SIZEOF_KVM_XCRS],
  ['lapic', abi.KVM_GET_LAPIC, abi.SIZEOF_KVM_LAPIC_STATE], ['events', abi.KVM_GET_VCPU_EVENTS, abi.SIZEOF_KVM_VCPU_EVENTS],
  ['debugregs', abi.KVM_GET_DEBUGREGS, abi.SIZEOF_KVM_DEBUGREGS],
] as const;
const IRQCHIP_IDS = [0, 1, 2];

/** One VM's capture as a batch, built once: the fds, requests and sizes never change. */
interface CapturePlan { batch: IoctlBatch; template: Uint8Array; msrCount: number }
const capturePlans = new WeakMap<VmFd, CapturePlan>();

function capturePlan(kvm: Kvm, vm: VmFd, vcpus: readonly VcpuFd[]): CapturePlan {
  const cached = capturePlans.get(vm);
  if (cached) return cached;
  const msrIndices = saveableMsrIndices(kvm, vcpus[0]!);
  const msrsSize = abi.SIZEOF_KVM_MSRS_HEADER + msrIndices.length * abi.SIZEOF_KVM_MSR_ENTRY;
  const calls: BatchedIoctl[] = [{ fd: vm.fd, request: abi.KVM_GET_CLOCK, size: abi.SIZEOF_KVM_CLOCK_DATA }];
  for (const v of vcpus) {
    calls.push({ fd: v.fd, request: abi.KVM_GET_MP_STATE, size: abi.SIZEOF_KVM_MP_STATE });
    for (const [, request, size] of VCPU_GETS) calls.push({ fd: v.fd, request, size });
    calls.push({ fd: v.fd, request: abi.KVM_GET_MSRS, size: msrsSize });
  }
  for (let i = 0; i < IRQCHIP_IDS.length; i++) calls.push({ fd: vm.fd, request: abi.KVM_GET_IRQCHIP, size: abi.SIZEOF_KVM_IRQCHIP });
  calls.push({ fd: vm.fd, request: abi.KVM_GET_PIT2, size: abi.SIZEOF_KVM_PIT_STATE2 });
  const batch = new IoctlBatch(calls);
  // What every run starts from: the MSR indices to read and the irqchip ids.
  const { buf: template, args } = batch.buffer();
  const msrs = encodeMsrs(msrIndices.map((index) => ({ index, data: 0n })));
  const perVcpu = 2 + VCPU_GETS.length;
  for (let i = 0; i < vcpus.length; i++) args[1 + i * perVcpu + perVcpu - 1]!.set(msrs);
  const chips = 1 + vcpus.length * perVcpu;
  IRQCHIP_IDS.forEach((id, i) => new DataView(args[chips + i]!.buffer, args[chips + i]!.byteOffset).setUint32(0, id, true));
  const plan = { batch, template, msrCount: msrIndices.length };
  capturePlans.set(vm, plan);
  return plan;
}

/**
 * Captures the state of a VM whose vCPUs are all out of KVM_RUN: every ioctl in one native call.
 * The structs are views of one buffer.
 */
export function captureKvmState(kvm: Kvm, vm: VmFd, vcpus: readonly VcpuFd[]): KvmVmSnapshot {
  const plan = capturePlan(kvm, vm, vcpus);
  const { buf, args } = plan.batch.buffer();
  buf.set(plan.template);
  const results = plan.batch.run(buf);
  let k = 0;
  const clock = args[k++]!;
  const out: VcpuSnapshot[] = vcpus.map((v) => {
    const mp = args[k++]!;
    const structs: Record<string, Uint8Array> = {};
    for (const [name] of VCPU_GETS) structs[name] = args[k++]!;
    const msrArg = k;
    const msrs = decodeMsrs(args[k++]!, results[msrArg]!);
    if (msrs.length !== plan.msrCount) throw new SnapshotError(`vCPU ${v.id}: KVM read ${msrs.length} of ${plan.msrCount} MSRs`);
    return {
      id: v.id, mpState: new DataView(mp.buffer, mp.byteOffset, 4).getUint32(0, true),
      regs: structs['regs']!, sregs: structs['sregs']!, xsave: structs['xsave']!, xcrs: structs['xcrs']!, lapic: structs['lapic']!,
      msrs, events: structs['events']!, debugregs: structs['debugregs']!,
    };
  });
  const irqchip = IRQCHIP_IDS.map(() => args[k++]!);
  return { vcpus: out, irqchip, pit: args[k]!, clock };
}

/** Copies a saved KVM struct into a buffer of the size this kernel uses: the ABI only grows. */
function fitInto(dst: Uint8Array, bytes: Uint8Array): void {
  dst.set(bytes.byteLength <= dst.byteLength ? bytes : bytes.subarray(0, dst.byteLength));
}

/**
 * Applies a captured state to a fresh VM with the same number of vCPUs, in one native call after
 * one read of the clock.
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
  const savedHostTsc = hostTsc(s.clock);
  const nowHostTsc = hostTsc(vm.getClock());
  const tscAdvance = savedHostTsc !== undefined && nowHostTsc !== undefined && nowHostTsc > savedHostTsc ? nowHostTsc - savedHostTsc : 0n;
  const calls: BatchedIoctl[] = [];
  const fills: Uint8Array[] = [];
  const add = (fd: number, request: number, size: number, bytes: Uint8Array): void => { calls.push({ fd, request, size }); fills.push(bytes); };
  for (const chip of s.irqchip) add(vm.fd, abi.KVM_SET_IRQCHIP, abi.SIZEOF_KVM_IRQCHIP, chip);
  add(vm.fd, abi.KVM_SET_PIT2, abi.SIZEOF_KVM_PIT_STATE2, s.pit);
  const msrCalls: Array<{ call: number; msrs: readonly MsrEntry[]; vcpu: number }> = [];
  for (const [i, v] of vcpus.entries()) {
    const c = s.vcpus[i]!;
    add(v.fd, abi.KVM_SET_SREGS, abi.SIZEOF_KVM_SREGS, c.sregs);
    add(v.fd, abi.KVM_SET_REGS, abi.SIZEOF_KVM_REGS, c.regs);
    add(v.fd, abi.KVM_SET_XSAVE, abi.SIZEOF_KVM_XSAVE, c.xsave);
    add(v.fd, abi.KVM_SET_XCRS, abi.SIZEOF_KVM_XCRS, c.xcrs);
    add(v.fd, abi.KVM_SET_LAPIC, abi.SIZEOF_KVM_LAPIC_STATE, c.lapic);
    const msrs = c.msrs.map((m) => (m.index === MSR_IA32_TSC ? { index: m.index, data: m.data + tscAdvance } : m));
    msrs.sort((a, b) => (a.index === MSR_IA32_TSC ? -1 : b.index === MSR_IA32_TSC ? 1 : 0));
    const encoded = encodeMsrs(msrs);
    msrCalls.push({ call: calls.length, msrs, vcpu: v.id });
    add(v.fd, abi.KVM_SET_MSRS, encoded.byteLength, encoded);
    add(v.fd, abi.KVM_SET_VCPU_EVENTS, abi.SIZEOF_KVM_VCPU_EVENTS, c.events);
    const mp = new Uint8Array(abi.SIZEOF_KVM_MP_STATE);
    new DataView(mp.buffer).setUint32(0, c.mpState, true);
    add(v.fd, abi.KVM_SET_MP_STATE, abi.SIZEOF_KVM_MP_STATE, mp);
    add(v.fd, abi.KVM_SET_DEBUGREGS, abi.SIZEOF_KVM_DEBUGREGS, c.debugregs);
  }
  add(vm.fd, abi.KVM_SET_CLOCK, abi.SIZEOF_KVM_CLOCK_DATA, s.clock);
  const batch = new IoctlBatch(calls);
  const { buf, args } = batch.buffer();
  fills.forEach((bytes, i) => fitInto(args[i]!, bytes));
  const results = batch.run(buf);
  // KVM_SET_MSRS stops at the first MSR it rejects: report which, rather than lose the rest silently.
  for (const m of msrCalls) {
    const n = results[m.call]!;
    if (n !== m.msrs.length) throw new SnapshotError(`vCPU ${m.vcpu}: KVM refused MSR 0x${m.msrs[n]!.index.toString(16)} on restore`);
  }
}
