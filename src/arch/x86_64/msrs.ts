// The MSR values a vCPU starts with. Reference: Intel SDM vol. 4 (MSR list).

import type { MsrEntry } from '../../sys/kvm-structs.js';

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_APICBASE = 0x1b;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_MTRR_DEF_TYPE = 0x2ff;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SYSCALL_MASK = 0xc0000084;
export const MSR_KERNEL_GS_BASE = 0xc0000102;

const MISC_ENABLE_FAST_STRING = 1n;
const MTRR_ENABLE = 1n << 11n;
const MTRR_MEM_TYPE_WB = 6n;

export function bootMsrs(): MsrEntry[] {
  return [
    { index: MSR_IA32_SYSENTER_CS, data: 0n },
    { index: MSR_IA32_SYSENTER_ESP, data: 0n },
    { index: MSR_IA32_SYSENTER_EIP, data: 0n },
    { index: MSR_STAR, data: 0n },
    { index: MSR_LSTAR, data: 0n },
    { index: MSR_CSTAR, data: 0n },
    { index: MSR_SYSCALL_MASK, data: 0n },
    { index: MSR_KERNEL_GS_BASE, data: 0n },
    { index: MSR_IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR_MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_MEM_TYPE_WB },
  ];
}
