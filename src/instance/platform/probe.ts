// Probing the real machine for the platform record: every source in probe-sources.ts plus what
// /dev/kvm reports (API version, capabilities, supported CPUID, MSR index list, vCPU mmap size).
// This is the only place that reads the platform; later instances load the stored record instead.

import * as abi from '../../sys/kvm-abi.js';
import { Kvm } from '../../sys/kvm.js';
import { probeAcpi, probeCpus, probeDmi, probeHost, probeMemmap, probeNuma } from './probe-sources.js';
import type { KvmDeviceInfo, KvmInfo, KvmModule, PlatformRecord, Probed } from './record.js';
import { SysfsRoot } from './sysfs.js';

export interface ProbeOptions {
  /** Where /sys and /proc are found; "/" on a real machine, a fake tree in tests. */
  sysfsRoot?: string;
  /** The KVM device; not under sysfsRoot. A path that does not exist records KVM as absent. */
  kvmDevice?: string;
  /** The capture time; the clock by default. */
  now?: () => Date;
}

// Capabilities whose numbers kvm-abi.ts does not carry yet; values from <linux/kvm.h>.
const KVM_CAP_HLT = 1;
const KVM_CAP_CLOCKSOURCE = 8;
const KVM_CAP_NR_MEMSLOTS = 10;
const KVM_CAP_SYNC_MMU = 16;
const KVM_CAP_SET_GUEST_DEBUG = 23;
const KVM_CAP_IRQ_ROUTING = 25;
const KVM_CAP_PIT_STATE2 = 35;
const KVM_CAP_ENABLE_CAP = 54;
const KVM_CAP_ONE_REG = 70;
const KVM_CAP_KVMCLOCK_CTRL = 76;
const KVM_CAP_SIGNAL_MSI = 77;
const KVM_CAP_READONLY_MEM = 81;
const KVM_CAP_ENABLE_CAP_VM = 98;
const KVM_CAP_SPLIT_IRQCHIP = 121;
const KVM_CAP_IOEVENTFD_ANY_LENGTH = 122;
const KVM_CAP_MAX_VCPU_ID = 128;
const KVM_CAP_X2APIC_API = 129;
const KVM_CAP_X86_DISABLE_EXITS = 143;
const KVM_CAP_GET_MSR_FEATURES = 153;
const KVM_CAP_NESTED_STATE = 157;
const KVM_CAP_EXCEPTION_PAYLOAD = 164;
const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
const KVM_CAP_X86_USER_SPACE_MSR = 188;
const KVM_CAP_DIRTY_LOG_RING = 192;
const KVM_CAP_XSAVE2 = 208;
const KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 223;
// Newer than Debian 12's header; numbers from Linux 6.10+ include/uapi/linux/kvm.h.
const KVM_CAP_PRE_FAULT_MEMORY = 236;

/** The capabilities recorded, in this order. Names are forever (they are serialized). */
export const RECORDED_KVM_CAPS: ReadonlyArray<readonly [string, number]> = [
  ['KVM_CAP_IRQCHIP', abi.KVM_CAP_IRQCHIP], ['KVM_CAP_HLT', KVM_CAP_HLT], ['KVM_CAP_USER_MEMORY', abi.KVM_CAP_USER_MEMORY],
  ['KVM_CAP_SET_TSS_ADDR', abi.KVM_CAP_SET_TSS_ADDR], ['KVM_CAP_EXT_CPUID', abi.KVM_CAP_EXT_CPUID],
  ['KVM_CAP_CLOCKSOURCE', KVM_CAP_CLOCKSOURCE], ['KVM_CAP_NR_VCPUS', abi.KVM_CAP_NR_VCPUS], ['KVM_CAP_NR_MEMSLOTS', KVM_CAP_NR_MEMSLOTS],
  ['KVM_CAP_MP_STATE', abi.KVM_CAP_MP_STATE], ['KVM_CAP_COALESCED_MMIO', abi.KVM_CAP_COALESCED_MMIO], ['KVM_CAP_SYNC_MMU', KVM_CAP_SYNC_MMU],
  ['KVM_CAP_SET_GUEST_DEBUG', KVM_CAP_SET_GUEST_DEBUG], ['KVM_CAP_IRQ_ROUTING', KVM_CAP_IRQ_ROUTING], ['KVM_CAP_IRQFD', abi.KVM_CAP_IRQFD],
  ['KVM_CAP_PIT2', abi.KVM_CAP_PIT2], ['KVM_CAP_PIT_STATE2', KVM_CAP_PIT_STATE2], ['KVM_CAP_IOEVENTFD', abi.KVM_CAP_IOEVENTFD],
  ['KVM_CAP_ADJUST_CLOCK', abi.KVM_CAP_ADJUST_CLOCK], ['KVM_CAP_VCPU_EVENTS', abi.KVM_CAP_VCPU_EVENTS], ['KVM_CAP_DEBUGREGS', abi.KVM_CAP_DEBUGREGS],
  ['KVM_CAP_ENABLE_CAP', KVM_CAP_ENABLE_CAP], ['KVM_CAP_XSAVE', abi.KVM_CAP_XSAVE], ['KVM_CAP_XCRS', abi.KVM_CAP_XCRS],
  ['KVM_CAP_TSC_CONTROL', abi.KVM_CAP_TSC_CONTROL], ['KVM_CAP_GET_TSC_KHZ', abi.KVM_CAP_GET_TSC_KHZ], ['KVM_CAP_MAX_VCPUS', abi.KVM_CAP_MAX_VCPUS],
  ['KVM_CAP_ONE_REG', KVM_CAP_ONE_REG], ['KVM_CAP_TSC_DEADLINE_TIMER', abi.KVM_CAP_TSC_DEADLINE_TIMER], ['KVM_CAP_SYNC_REGS', abi.KVM_CAP_SYNC_REGS],
  ['KVM_CAP_KVMCLOCK_CTRL', KVM_CAP_KVMCLOCK_CTRL], ['KVM_CAP_SIGNAL_MSI', KVM_CAP_SIGNAL_MSI], ['KVM_CAP_READONLY_MEM', KVM_CAP_READONLY_MEM],
  ['KVM_CAP_ENABLE_CAP_VM', KVM_CAP_ENABLE_CAP_VM], ['KVM_CAP_SPLIT_IRQCHIP', KVM_CAP_SPLIT_IRQCHIP],
  ['KVM_CAP_IOEVENTFD_ANY_LENGTH', KVM_CAP_IOEVENTFD_ANY_LENGTH], ['KVM_CAP_MAX_VCPU_ID', KVM_CAP_MAX_VCPU_ID],
  ['KVM_CAP_X2APIC_API', KVM_CAP_X2APIC_API], ['KVM_CAP_IMMEDIATE_EXIT', abi.KVM_CAP_IMMEDIATE_EXIT],
  ['KVM_CAP_X86_DISABLE_EXITS', KVM_CAP_X86_DISABLE_EXITS], ['KVM_CAP_GET_MSR_FEATURES', KVM_CAP_GET_MSR_FEATURES],
  ['KVM_CAP_NESTED_STATE', KVM_CAP_NESTED_STATE], ['KVM_CAP_COALESCED_PIO', abi.KVM_CAP_COALESCED_PIO],
  ['KVM_CAP_EXCEPTION_PAYLOAD', KVM_CAP_EXCEPTION_PAYLOAD], ['KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2],
  ['KVM_CAP_X86_USER_SPACE_MSR', KVM_CAP_X86_USER_SPACE_MSR], ['KVM_CAP_DIRTY_LOG_RING', KVM_CAP_DIRTY_LOG_RING],
  ['KVM_CAP_XSAVE2', KVM_CAP_XSAVE2], ['KVM_CAP_DIRTY_LOG_RING_ACQ_REL', KVM_CAP_DIRTY_LOG_RING_ACQ_REL],
  ['KVM_CAP_PRE_FAULT_MEMORY', KVM_CAP_PRE_FAULT_MEMORY],
];

/** Which module provides /dev/kvm: PVM first, because kvm_pvm can be loaded next to kvm_amd/kvm_intel. */
function probeKvmModule(sys: SysfsRoot): KvmModule {
  for (const m of ['kvm_pvm', 'kvm_intel', 'kvm_amd'] as const) if (sys.exists(`/sys/module/${m}`)) return m;
  return 'none';
}

function probeKvmDevice(devicePath: string): Probed<KvmDeviceInfo> {
  let kvm: Kvm;
  try {
    kvm = Kvm.open(devicePath);
  } catch (e) {
    return { present: false, reason: e instanceof Error ? e.message : String(e) };
  }
  try {
    return {
      present: true,
      value: {
        path: devicePath,
        apiVersion: kvm.getApiVersion(),
        vcpuMmapSize: kvm.getVcpuMmapSize(),
        caps: RECORDED_KVM_CAPS.map(([name, cap]) => ({ name, cap, value: kvm.checkExtension(cap) })),
        supportedCpuid: kvm.getSupportedCpuid().map((e) => ({ ...e })),
        msrIndexList: kvm.getMsrIndexList(),
      },
    };
  } catch (e) {
    return { present: false, reason: `${devicePath} opened but a query failed: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    kvm.close();
  }
}

function probeKvm(sys: SysfsRoot, devicePath: string): KvmInfo {
  return { module: probeKvmModule(sys), device: probeKvmDevice(devicePath) };
}

/** Reads everything the platform record holds from this machine. Absent sources are recorded as such. */
export function probePlatform(opts: ProbeOptions = {}): PlatformRecord {
  const sys = new SysfsRoot(opts.sysfsRoot ?? '/');
  return {
    host: probeHost(sys, (opts.now ?? (() => new Date()))()),
    cpus: probeCpus(sys),
    memmap: probeMemmap(sys),
    dmi: probeDmi(sys),
    acpi: probeAcpi(sys),
    numa: probeNuma(sys),
    kvm: probeKvm(sys, opts.kvmDevice ?? '/dev/kvm'),
    partition: null,
  };
}
