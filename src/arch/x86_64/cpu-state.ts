// Plain descriptions of the x86-64 register state a loader wants a vCPU to start with.
// These are not KVM structs: vmm/ turns them into kvm_regs/kvm_sregs through sys/ codecs.

/** A segment register as KVM models it (struct kvm_segment), in plain fields. */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface DescriptorTable {
  base: bigint;
  limit: number;
}

export interface SpecialRegisters {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  tr: Segment;
  ldt: Segment;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

export const GP_REGISTER_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type GpRegisterName = (typeof GP_REGISTER_NAMES)[number];
export type GeneralRegisters = Record<GpRegisterName, bigint>;

/** How the boot vCPU starts: registers (unset ones are zero, rflags defaults to 0x2) and sregs. */
export interface BootCpuState {
  regs: Partial<GeneralRegisters>;
  sregs: SpecialRegisters;
}

// Control register and EFER bits, spelled as the SDM spells them.
export const X86_CR0_PE = 1n << 0n;
export const X86_CR0_MP = 1n << 1n;
export const X86_CR0_ET = 1n << 4n;
export const X86_CR0_NE = 1n << 5n;
export const X86_CR0_WP = 1n << 16n;
export const X86_CR0_AM = 1n << 18n;
export const X86_CR0_PG = 1n << 31n;
export const X86_CR4_PAE = 1n << 5n;
export const X86_CR4_PGE = 1n << 7n;
export const X86_CR4_OSFXSR = 1n << 9n;
export const X86_CR4_OSXMMEXCPT = 1n << 10n;
export const EFER_SCE = 1n << 0n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;

/** A flat segment with the given attributes; the limit is 4 GiB with 4 KiB granularity. */
export function flatSegment(selector: number, type: number, opts: { l?: number; db?: number; dpl?: number; s?: number } = {}): Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type,
    present: 1,
    dpl: opts.dpl ?? 0,
    db: opts.db ?? 0,
    s: opts.s ?? 1,
    l: opts.l ?? 0,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

export function unusableSegment(): Segment {
  return { base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}
