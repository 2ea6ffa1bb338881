// Typed wrappers over the KVM ioctls, one method per ioctl, named after it.
// Reference: Documentation/virt/kvm/api.rst (sections 4.x name each ioctl used here).

import type { GeneralRegisters, SpecialRegisters } from '../arch/x86_64/cpu-state.js';
import * as abi from './kvm-abi.js';
import {
  type CpuidEntry, type MsrEntry, allocCpuid2, decodeCpuid2, decodeMsrs, decodeRegs, encodeCpuid2, encodeIoeventfd,
  encodeIrqfd, encodeMemoryRegion, encodeMsrs, encodeRegs, patchSregs, decodeSregs,
} from './kvm-structs.js';
import { OwnedFd } from './fd.js';
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE, isNativeError, native } from './native.js';

export class KvmUnavailableError extends Error {
  readonly code = 'ERR_KVM_UNAVAILABLE';
}

/** The /dev/kvm system fd. */
export class Kvm {
  private readonly owned: OwnedFd;

  private constructor(fd: number) {
    this.owned = new OwnedFd(fd);
  }

  static open(path = '/dev/kvm'): Kvm {
    let fd: number;
    try {
      fd = native().open(path, O_RDWR);
    } catch (e) {
      if (isNativeError(e)) {
        const hint = e.code === 'ENOENT'
          ? 'the kvm module is not loaded or this host has no virtualization support'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'run as root or add this user to the kvm group'
            : 'check that KVM works on this host';
        throw new KvmUnavailableError(`cannot open ${path}: ${e.code}: ${hint}`, { cause: e });
      }
      throw e;
    }
    const kvm = new Kvm(fd);
    let version: number;
    try {
      version = kvm.getApiVersion();
    } catch (e) {
      kvm.close();
      throw new KvmUnavailableError(`${path} is not a KVM device (KVM_GET_API_VERSION failed); point swapvisor at /dev/kvm`, { cause: e });
    }
    if (version !== abi.KVM_API_VERSION) {
      kvm.close();
      throw new KvmUnavailableError(`${path} speaks KVM API version ${version}, swapvisor needs ${abi.KVM_API_VERSION}`);
    }
    return kvm;
  }

  get fd(): number { return this.owned.fd; }
  close(): void { this.owned.close(); }

  getApiVersion(): number { return native().ioctl(this.fd, abi.KVM_GET_API_VERSION); }
  checkExtension(cap: number): number { return native().ioctl(this.fd, abi.KVM_CHECK_EXTENSION, cap); }
  getVcpuMmapSize(): number { return native().ioctl(this.fd, abi.KVM_GET_VCPU_MMAP_SIZE); }

  getSupportedCpuid(): CpuidEntry[] {
    for (let max = 128; max <= 4096; max *= 2) {
      const buf = allocCpuid2(max);
      try {
        native().ioctl(this.fd, abi.KVM_GET_SUPPORTED_CPUID, buf);
        return decodeCpuid2(buf);
      } catch (e) {
        if (!(isNativeError(e) && e.code === 'E2BIG')) throw e;
      }
    }
    throw new Error('KVM_GET_SUPPORTED_CPUID: too many entries');
  }

  getMsrIndexList(): number[] {
    const probe = new Uint8Array(4);
    try {
      native().ioctl(this.fd, abi.KVM_GET_MSR_INDEX_LIST, probe);
    } catch (e) {
      if (!(isNativeError(e) && e.code === 'E2BIG')) throw e;
    }
    const n = new DataView(probe.buffer).getUint32(0, true);
    const buf = new Uint8Array(4 + n * 4);
    new DataView(buf.buffer).setUint32(0, n, true);
    native().ioctl(this.fd, abi.KVM_GET_MSR_INDEX_LIST, buf);
    const v = new DataView(buf.buffer);
    return Array.from({ length: v.getUint32(0, true) }, (_, i) => v.getUint32(4 + i * 4, true));
  }

  createVm(): VmFd {
    return new VmFd(native().ioctl(this.fd, abi.KVM_CREATE_VM, 0), this.getVcpuMmapSize());
  }
}

/** A VM fd from KVM_CREATE_VM. */
export class VmFd {
  private readonly owned: OwnedFd;

  constructor(fd: number, readonly vcpuMmapSize: number) {
    this.owned = new OwnedFd(fd);
  }

  get fd(): number { return this.owned.fd; }
  close(): void { this.owned.close(); }
  /** Closes off the calling thread: when no vCPU fd is left, this destroys the VM (see OwnedFd.closeAsync). */
  closeAsync(): Promise<void> { return this.owned.closeAsync(); }

  checkExtension(cap: number): number { return native().ioctl(this.fd, abi.KVM_CHECK_EXTENSION, cap); }

  setUserMemoryRegion(r: { slot: number; flags: number; guestPhysAddr: number; memorySize: number; userspaceAddr: bigint }): void {
    native().ioctl(this.fd, abi.KVM_SET_USER_MEMORY_REGION, encodeMemoryRegion(r));
  }

  /** KVM_SET_USER_MEMORY_REGION on a pool thread: it sleeps for an RCU grace period (~6 ms on PVM). */
  setUserMemoryRegionAsync(r: { slot: number; flags: number; guestPhysAddr: number; memorySize: number; userspaceAddr: bigint }): Promise<void> {
    return new Promise((resolve, reject) => {
      native().ioctlAsync(this.fd, abi.KVM_SET_USER_MEMORY_REGION, encodeMemoryRegion(r), (errno) => {
        if (errno === 0) resolve();
        else reject(Object.assign(new Error(`KVM_SET_USER_MEMORY_REGION failed with errno ${errno}`), { code: 'ERR_KVM_MEMSLOT', errno, syscall: 'ioctl' }));
      });
    });
  }

  setTssAddr(addr: number): void { native().ioctl(this.fd, abi.KVM_SET_TSS_ADDR, addr); }

  setIdentityMapAddr(addr: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    native().ioctl(this.fd, abi.KVM_SET_IDENTITY_MAP_ADDR, b);
  }

  createIrqchip(): void { native().ioctl(this.fd, abi.KVM_CREATE_IRQCHIP); }

  createPit2(flags = abi.KVM_PIT_SPEAKER_DUMMY): void {
    const b = new Uint8Array(abi.SIZEOF_KVM_PIT_CONFIG);
    new DataView(b.buffer).setUint32(0, flags, true);
    native().ioctl(this.fd, abi.KVM_CREATE_PIT2, b);
  }

  irqLine(irq: number, level: boolean): void {
    const b = new Uint8Array(abi.SIZEOF_KVM_IRQ_LEVEL);
    const v = new DataView(b.buffer);
    v.setUint32(0, irq, true);
    v.setUint32(4, level ? 1 : 0, true);
    native().ioctl(this.fd, abi.KVM_IRQ_LINE, b);
  }

  /** KVM_GET_IRQCHIP for chip 0 (PIC master), 1 (PIC slave) or 2 (IOAPIC): the whole struct as bytes. */
  getIrqchip(chipId: number): Uint8Array {
    const b = new Uint8Array(abi.SIZEOF_KVM_IRQCHIP);
    new DataView(b.buffer).setUint32(0, chipId, true);
    native().ioctl(this.fd, abi.KVM_GET_IRQCHIP, b);
    return b;
  }
  setIrqchip(state: Uint8Array): void { native().ioctl(this.fd, abi.KVM_SET_IRQCHIP, state); }

  getPit2(): Uint8Array {
    const b = new Uint8Array(abi.SIZEOF_KVM_PIT_STATE2);
    native().ioctl(this.fd, abi.KVM_GET_PIT2, b);
    return b;
  }
  setPit2(state: Uint8Array): void { native().ioctl(this.fd, abi.KVM_SET_PIT2, state); }

  getClock(): Uint8Array {
    const b = new Uint8Array(abi.SIZEOF_KVM_CLOCK_DATA);
    native().ioctl(this.fd, abi.KVM_GET_CLOCK, b);
    return b;
  }
  setClock(state: Uint8Array): void { native().ioctl(this.fd, abi.KVM_SET_CLOCK, state); }

  ioeventfd(e: { datamatch: bigint; addr: number; len: number; fd: number; flags: number }): void {
    native().ioctl(this.fd, abi.KVM_IOEVENTFD, encodeIoeventfd(e));
  }

  irqfd(e: { fd: number; gsi: number; flags: number; resamplefd?: number }): void {
    native().ioctl(this.fd, abi.KVM_IRQFD, encodeIrqfd(e));
  }

  /** KVM_REGISTER_COALESCED_MMIO: writes to [addr, addr+size) queue in the ring instead of exiting. */
  registerCoalescedMmio(zone: { addr: number; size: number; pio: boolean }): void {
    // struct kvm_coalesced_mmio_zone (16 bytes): 0 u64 addr | 8 u32 size | 12 u32 pio
    const b = new Uint8Array(abi.SIZEOF_KVM_COALESCED_MMIO_ZONE);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(zone.addr), true);
    v.setUint32(8, zone.size, true);
    v.setUint32(12, zone.pio ? 1 : 0, true);
    native().ioctl(this.fd, abi.KVM_REGISTER_COALESCED_MMIO, b);
  }

  createVcpu(id: number): VcpuFd {
    const fd = native().ioctl(this.fd, abi.KVM_CREATE_VCPU, id);
    return new VcpuFd(fd, id, this.vcpuMmapSize);
  }
}

/** A vCPU fd from KVM_CREATE_VCPU, with its mapped struct kvm_run. */
export class VcpuFd {
  private readonly owned: OwnedFd;
  readonly run: Uint8Array;
  private readonly runBuffer: ArrayBuffer;

  constructor(fd: number, readonly id: number, mmapSize: number) {
    this.owned = new OwnedFd(fd);
    try {
      this.runBuffer = native().mmap(fd, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, 0).buffer;
    } catch (e) {
      this.owned.close();
      throw e;
    }
    this.run = new Uint8Array(this.runBuffer);
  }

  get fd(): number { return this.owned.fd; }

  close(): void {
    if (this.owned.closed) return;
    native().munmap(this.runBuffer);
    this.owned.close();
  }

  private get(request: number, size: number): Uint8Array {
    const b = new Uint8Array(size);
    native().ioctl(this.fd, request, b);
    return b;
  }
  private set(request: number, bytes: Uint8Array): void {
    native().ioctl(this.fd, request, bytes);
  }

  getRegs(): GeneralRegisters { return decodeRegs(this.get(abi.KVM_GET_REGS, abi.SIZEOF_KVM_REGS)); }
  setRegs(regs: GeneralRegisters): void { this.set(abi.KVM_SET_REGS, encodeRegs(regs)); }
  getSregsBytes(): Uint8Array { return this.get(abi.KVM_GET_SREGS, abi.SIZEOF_KVM_SREGS); }
  setSregsBytes(b: Uint8Array): void { this.set(abi.KVM_SET_SREGS, b); }
  getSregs(): SpecialRegisters { return decodeSregs(this.getSregsBytes()); }
  /** Read-modify-write: keeps the fields KVM owns (apic_base, interrupt bitmap, cr2, cr8). */
  setSregs(s: SpecialRegisters): void { this.setSregsBytes(patchSregs(this.getSregsBytes(), s)); }
  getRegsBytes(): Uint8Array { return this.get(abi.KVM_GET_REGS, abi.SIZEOF_KVM_REGS); }
  setRegsBytes(b: Uint8Array): void { this.set(abi.KVM_SET_REGS, b); }
  getFpu(): Uint8Array { return this.get(abi.KVM_GET_FPU, abi.SIZEOF_KVM_FPU); }
  setFpu(b: Uint8Array): void { this.set(abi.KVM_SET_FPU, b); }
  getLapic(): Uint8Array { return this.get(abi.KVM_GET_LAPIC, abi.SIZEOF_KVM_LAPIC_STATE); }
  setLapic(b: Uint8Array): void { this.set(abi.KVM_SET_LAPIC, b); }
  getXsave(): Uint8Array { return this.get(abi.KVM_GET_XSAVE, abi.SIZEOF_KVM_XSAVE); }
  setXsave(b: Uint8Array): void { this.set(abi.KVM_SET_XSAVE, b); }
  getXcrs(): Uint8Array { return this.get(abi.KVM_GET_XCRS, abi.SIZEOF_KVM_XCRS); }
  setXcrs(b: Uint8Array): void { this.set(abi.KVM_SET_XCRS, b); }
  getVcpuEvents(): Uint8Array { return this.get(abi.KVM_GET_VCPU_EVENTS, abi.SIZEOF_KVM_VCPU_EVENTS); }
  setVcpuEvents(b: Uint8Array): void { this.set(abi.KVM_SET_VCPU_EVENTS, b); }
  getDebugregs(): Uint8Array { return this.get(abi.KVM_GET_DEBUGREGS, abi.SIZEOF_KVM_DEBUGREGS); }
  setDebugregs(b: Uint8Array): void { this.set(abi.KVM_SET_DEBUGREGS, b); }

  getMpState(): number { return new DataView(this.get(abi.KVM_GET_MP_STATE, 4).buffer).getUint32(0, true); }
  setMpState(state: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, state, true);
    this.set(abi.KVM_SET_MP_STATE, b);
  }

  setCpuid2(entries: readonly CpuidEntry[]): void { this.set(abi.KVM_SET_CPUID2, encodeCpuid2(entries)); }

  /** KVM_SET_MSRS; returns how many were set (KVM stops at the first it rejects). */
  setMsrs(entries: readonly MsrEntry[]): number { return native().ioctl(this.fd, abi.KVM_SET_MSRS, encodeMsrs(entries)); }

  getMsrs(indices: readonly number[]): MsrEntry[] {
    const b = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = native().ioctl(this.fd, abi.KVM_GET_MSRS, b);
    return decodeMsrs(b, n);
  }

  getTscKhz(): number { return native().ioctl(this.fd, abi.KVM_GET_TSC_KHZ); }
}
