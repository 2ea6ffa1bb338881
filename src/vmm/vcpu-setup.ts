// Configures a new vCPU before its first run: CPUID, MSRs, LAPIC virtual-wire mode, FPU, and for
// the boot vCPU the registers the loader asked for. Application processors are left in KVM's
// UNINITIALIZED state and wait for INIT/SIPI from the boot vCPU, as on real hardware.
//
// Ordering requirements: CPUID before MSRs (KVM checks MSRs against CPUID); LAPIC before the
// registers; sregs before regs is not required at boot, but we keep the restore order anyway.

import type { BootCpuState, GeneralRegisters } from '../arch/x86_64/cpu-state.js';
import { GP_REGISTER_NAMES } from '../arch/x86_64/cpu-state.js';
import { filterCpuid } from '../arch/x86_64/cpuid.js';
import { bootFpu } from '../arch/x86_64/fpu.js';
import { setupLapicLint } from '../arch/x86_64/lapic.js';
import { bootMsrs } from '../arch/x86_64/msrs.js';
import type { VcpuFd } from '../sys/kvm.js';
import type { CpuidEntry } from '../sys/kvm-structs.js';

export interface VcpuSetup {
  supportedCpuid: readonly CpuidEntry[];
  vcpuCount: number;
  tscDeadline: boolean;
}

export class VcpuSetupError extends Error {
  readonly code = 'ERR_VCPU_SETUP';
}

export function configureVcpu(vcpu: VcpuFd, s: VcpuSetup): void {
  vcpu.setCpuid2(filterCpuid(s.supportedCpuid, { vcpuId: vcpu.id, vcpuCount: s.vcpuCount, tscDeadline: s.tscDeadline }));
  const msrs = bootMsrs();
  // KVM stops at the first MSR it rejects; set the rest one by one past it.
  let done = vcpu.setMsrs(msrs);
  while (done < msrs.length) {
    done += 1 + vcpu.setMsrs(msrs.slice(done + 1));
  }
  vcpu.setLapic(setupLapicLint(vcpu.getLapic()));
  vcpu.setFpu(bootFpu());
}

export function applyBootState(vcpu: VcpuFd, boot: BootCpuState): void {
  vcpu.setSregs(boot.sregs);
  const regs = Object.fromEntries(GP_REGISTER_NAMES.map((n) => [n, 0n])) as GeneralRegisters;
  regs.rflags = 0x2n;
  Object.assign(regs, boot.regs);
  vcpu.setRegs(regs);
}
