// Filters KVM's supported CPUID into what one vCPU of a VM reports: its APIC id and the VM's
// topology, the hypervisor bit, TSC-deadline when KVM has it, and no PMU (we don't virtualize one).
// Reference: Intel SDM vol. 2A, CPUID; Documentation/virt/kvm/api.rst (KVM_GET_SUPPORTED_CPUID).

import type { CpuidEntry } from '../../sys/kvm-structs.js';

export interface CpuidOptions {
  vcpuId: number;
  vcpuCount: number;
  tscDeadline: boolean;
}

const CPUID_1_ECX_TSC_DEADLINE = 1 << 24;
const CPUID_1_ECX_HYPERVISOR = 1 << 31;
const CPUID_1_EDX_HTT = 1 << 28;
const LEAF_FEATURES = 0x1;
const LEAF_CACHE_PARAMS = 0x4;
const LEAF_PMU = 0xa;
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;

export function filterCpuid(supported: readonly CpuidEntry[], o: CpuidOptions): CpuidEntry[] {
  return supported.map((e) => {
    const out = { ...e };
    switch (e.function) {
      case LEAF_FEATURES:
        // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
        out.ebx = ((o.vcpuId & 0xff) << 24) | ((o.vcpuCount & 0xff) << 16) | (e.ebx & 0xffff);
        out.ecx = (e.ecx | CPUID_1_ECX_HYPERVISOR) & (o.tscDeadline ? ~0 : ~CPUID_1_ECX_TSC_DEADLINE);
        if (o.tscDeadline) out.ecx |= CPUID_1_ECX_TSC_DEADLINE;
        out.edx = o.vcpuCount > 1 ? e.edx | CPUID_1_EDX_HTT : e.edx & ~CPUID_1_EDX_HTT;
        break;
      case LEAF_CACHE_PARAMS:
        // EAX[31:26] cores per package - 1: one core per vCPU.
        out.eax = (e.eax & 0x03ffffff) | (((o.vcpuCount - 1) & 0x3f) << 26);
        break;
      case LEAF_PMU:
        out.eax = 0; out.ebx = 0; out.ecx = 0; out.edx = 0;
        break;
      case LEAF_TOPOLOGY:
      case LEAF_TOPOLOGY_V2:
        // EDX: x2APIC id of this vCPU on every sub-leaf.
        out.edx = o.vcpuId;
        break;
    }
    out.ebx >>>= 0; out.ecx >>>= 0; out.edx >>>= 0; out.eax >>>= 0;
    return out;
  });
}
