// KVM ioctl request numbers and ABI constants, spelled as in <linux/kvm.h>.
// Reference: Documentation/virt/kvm/api.rst. Sizes here are checked against the kernel
// headers by src/sys/kvm-abi.test.ts, which compiles a probe against /usr/include/linux/kvm.h.

const KVMIO = 0xae;
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

function ioc(dir: number, nr: number, size: number): number {
  // (dir << 30) overflows int32, so build it unsigned.
  return ((dir << 30) >>> 0) + ((size << 16) | (KVMIO << 8) | nr);
}
const io = (nr: number): number => ioc(IOC_NONE, nr, 0);
const ior = (nr: number, size: number): number => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number): number => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, nr, size);

// Struct sizes (x86-64).
export const SIZEOF_KVM_REGS = 144;
export const SIZEOF_KVM_SREGS = 312;
export const SIZEOF_KVM_SEGMENT = 24;
export const SIZEOF_KVM_FPU = 416;
export const SIZEOF_KVM_LAPIC_STATE = 1024;
export const SIZEOF_KVM_XSAVE = 4096;
export const SIZEOF_KVM_XCRS = 392;
export const SIZEOF_KVM_VCPU_EVENTS = 64;
export const SIZEOF_KVM_DEBUGREGS = 128;
export const SIZEOF_KVM_MP_STATE = 4;
export const SIZEOF_KVM_IRQCHIP = 520;
export const SIZEOF_KVM_PIT_STATE2 = 112;
export const SIZEOF_KVM_PIT_CONFIG = 64;
export const SIZEOF_KVM_CLOCK_DATA = 48;
export const SIZEOF_KVM_USERSPACE_MEMORY_REGION = 32;
export const SIZEOF_KVM_IRQ_LEVEL = 8;
export const SIZEOF_KVM_IOEVENTFD = 64;
export const SIZEOF_KVM_IRQFD = 32;
export const SIZEOF_KVM_COALESCED_MMIO_ZONE = 16;
export const SIZEOF_KVM_CPUID2_HEADER = 8;
export const SIZEOF_KVM_CPUID_ENTRY2 = 40;
export const SIZEOF_KVM_MSRS_HEADER = 8;
export const SIZEOF_KVM_MSR_ENTRY = 16;
export const SIZEOF_KVM_MSR_LIST_HEADER = 4;

// System ioctls.
export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_GET_MSR_INDEX_LIST = iowr(0x02, SIZEOF_KVM_MSR_LIST_HEADER);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, SIZEOF_KVM_CPUID2_HEADER);
// VM ioctls.
export const KVM_CREATE_VCPU = io(0x41);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, SIZEOF_KVM_USERSPACE_MEMORY_REGION);
export const KVM_SET_TSS_ADDR = io(0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, SIZEOF_KVM_IRQ_LEVEL);
export const KVM_GET_IRQCHIP = iowr(0x62, SIZEOF_KVM_IRQCHIP);
export const KVM_SET_IRQCHIP = ior(0x63, SIZEOF_KVM_IRQCHIP);
export const KVM_REGISTER_COALESCED_MMIO = iow(0x67, SIZEOF_KVM_COALESCED_MMIO_ZONE);
export const KVM_IRQFD = iow(0x76, SIZEOF_KVM_IRQFD);
export const KVM_CREATE_PIT2 = iow(0x77, SIZEOF_KVM_PIT_CONFIG);
export const KVM_IOEVENTFD = iow(0x79, SIZEOF_KVM_IOEVENTFD);
export const KVM_SET_CLOCK = iow(0x7b, SIZEOF_KVM_CLOCK_DATA);
export const KVM_GET_CLOCK = ior(0x7c, SIZEOF_KVM_CLOCK_DATA);
export const KVM_GET_PIT2 = ior(0x9f, SIZEOF_KVM_PIT_STATE2);
export const KVM_SET_PIT2 = iow(0xa0, SIZEOF_KVM_PIT_STATE2);
// vCPU ioctls.
export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, SIZEOF_KVM_REGS);
export const KVM_SET_REGS = iow(0x82, SIZEOF_KVM_REGS);
export const KVM_GET_SREGS = ior(0x83, SIZEOF_KVM_SREGS);
export const KVM_SET_SREGS = iow(0x84, SIZEOF_KVM_SREGS);
export const KVM_GET_MSRS = iowr(0x88, SIZEOF_KVM_MSRS_HEADER);
export const KVM_SET_MSRS = iow(0x89, SIZEOF_KVM_MSRS_HEADER);
export const KVM_GET_FPU = ior(0x8c, SIZEOF_KVM_FPU);
export const KVM_SET_FPU = iow(0x8d, SIZEOF_KVM_FPU);
export const KVM_GET_LAPIC = ior(0x8e, SIZEOF_KVM_LAPIC_STATE);
export const KVM_SET_LAPIC = iow(0x8f, SIZEOF_KVM_LAPIC_STATE);
export const KVM_SET_CPUID2 = iow(0x90, SIZEOF_KVM_CPUID2_HEADER);
export const KVM_GET_CPUID2 = iowr(0x91, SIZEOF_KVM_CPUID2_HEADER);
export const KVM_GET_MP_STATE = ior(0x98, SIZEOF_KVM_MP_STATE);
export const KVM_SET_MP_STATE = iow(0x99, SIZEOF_KVM_MP_STATE);
export const KVM_GET_VCPU_EVENTS = ior(0x9f, SIZEOF_KVM_VCPU_EVENTS);
export const KVM_SET_VCPU_EVENTS = iow(0xa0, SIZEOF_KVM_VCPU_EVENTS);
export const KVM_GET_DEBUGREGS = ior(0xa1, SIZEOF_KVM_DEBUGREGS);
export const KVM_SET_DEBUGREGS = iow(0xa2, SIZEOF_KVM_DEBUGREGS);
export const KVM_SET_TSC_KHZ = io(0xa2);
export const KVM_GET_TSC_KHZ = io(0xa3);
export const KVM_GET_XSAVE = ior(0xa4, SIZEOF_KVM_XSAVE);
export const KVM_SET_XSAVE = iow(0xa5, SIZEOF_KVM_XSAVE);
export const KVM_GET_XCRS = ior(0xa6, SIZEOF_KVM_XCRS);
export const KVM_SET_XCRS = iow(0xa7, SIZEOF_KVM_XCRS);

export const KVM_API_VERSION = 12;

// Capabilities (KVM_CHECK_EXTENSION).
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_SET_TSS_ADDR = 4;
export const KVM_CAP_EXT_CPUID = 7;
export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_MP_STATE = 14;
export const KVM_CAP_COALESCED_MMIO = 15;
export const KVM_CAP_IRQFD = 32;
export const KVM_CAP_PIT2 = 33;
export const KVM_CAP_IOEVENTFD = 36;
export const KVM_CAP_ADJUST_CLOCK = 39;
export const KVM_CAP_VCPU_EVENTS = 41;
export const KVM_CAP_DEBUGREGS = 50;
export const KVM_CAP_XSAVE = 55;
export const KVM_CAP_XCRS = 56;
export const KVM_CAP_TSC_CONTROL = 60;
export const KVM_CAP_GET_TSC_KHZ = 61;
export const KVM_CAP_MAX_VCPUS = 66;
export const KVM_CAP_TSC_DEADLINE_TIMER = 72;
export const KVM_CAP_SYNC_REGS = 74;
export const KVM_CAP_IMMEDIATE_EXIT = 136;
export const KVM_CAP_COALESCED_PIO = 162;

// Exit reasons (kvm_run.exit_reason).
export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_SYSTEM_EVENT = 24;

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

export const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
export const KVM_SYSTEM_EVENT_RESET = 2;
export const KVM_SYSTEM_EVENT_CRASH = 3;

export const KVM_INTERNAL_ERROR_EMULATION = 1;
export const KVM_INTERNAL_ERROR_SIMUL_EX = 2;
export const KVM_INTERNAL_ERROR_DELIVERY_EV = 3;

export const KVM_MP_STATE_RUNNABLE = 0;
export const KVM_MP_STATE_UNINITIALIZED = 1;
export const KVM_MP_STATE_INIT_RECEIVED = 2;
export const KVM_MP_STATE_HALTED = 3;
export const KVM_MP_STATE_SIPI_RECEIVED = 4;

export const KVM_PIT_SPEAKER_DUMMY = 1;
export const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
export const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;

/** Offsets into struct kvm_run (x86-64). */
export const KVM_RUN_REQUEST_INTERRUPT_WINDOW = 0; // u8
export const KVM_RUN_IMMEDIATE_EXIT = 1; // u8
export const KVM_RUN_EXIT_REASON = 8; // u32
export const KVM_RUN_READY_FOR_INTERRUPT_INJECTION = 12; // u8
export const KVM_RUN_IF_FLAG = 13; // u8
export const KVM_RUN_FLAGS = 14; // u16
export const KVM_RUN_CR8 = 16; // u64
export const KVM_RUN_APIC_BASE = 24; // u64
export const KVM_RUN_EXIT_DATA = 32; // union, 256 bytes
