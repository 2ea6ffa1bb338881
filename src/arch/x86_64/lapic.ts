// Local APIC set-up in the register page KVM_GET_LAPIC returns: LINT0 delivers ExtINT (the 8259
// PIC's output) and LINT1 an NMI, as the MP specification's virtual wire mode expects.
// Reference: Intel SDM vol. 3A, 11.5.1 (LVT); Documentation/virt/kvm/api.rst (KVM_GET_LAPIC).

// Layout of struct kvm_lapic_state: the 1 KiB xAPIC register page; each register is a u32 at its MMIO offset.
export const APIC_LVT0 = 0x350;
export const APIC_LVT1 = 0x360;
export const APIC_MODE_NMI = 0x4;
export const APIC_MODE_EXTINT = 0x7;

function setDeliveryMode(reg: number, mode: number): number {
  return ((reg & ~0x700) | (mode << 8)) >>> 0;
}

export function setupLapicLint(regs: Uint8Array): Uint8Array {
  const v = new DataView(regs.buffer, regs.byteOffset, regs.byteLength);
  v.setUint32(APIC_LVT0, setDeliveryMode(v.getUint32(APIC_LVT0, true), APIC_MODE_EXTINT), true);
  v.setUint32(APIC_LVT1, setDeliveryMode(v.getUint32(APIC_LVT1, true), APIC_MODE_NMI), true);
  return regs;
}
