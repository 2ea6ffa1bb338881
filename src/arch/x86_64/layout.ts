// Where the VMM puts its boot structures in guest physical memory (x86-64).
// The guest kit's direct long-mode entry relies on these addresses: see docs/boot-protocol.md.

/** GDT: null, kernel code64, kernel data, user data, user code64, TSS (16 bytes). */
export const BOOT_GDT_START = 0x500;
/** IDT: 256 16-byte gates. */
export const BOOT_IDT_START = 0x1000;
/** hvm_start_info (PVH and direct entry), followed by its memory map at +0x100. */
export const START_INFO_START = 0x2000;
export const START_INFO_MEMMAP_START = 0x2100;
/** The hvm_modlist_entry array (the initrd), between hvm_start_info (56 bytes) and its memory map. */
export const START_INFO_MODLIST_START = 0x2040;
export const START_INFO_MODLIST_MAX_ENTRIES = 6;
export const START_INFO_MEMMAP_MAX_ENTRIES = 64;
/** Kernel command line, NUL-terminated. */
export const CMDLINE_START = 0x3000;
export const CMDLINE_MAX_SIZE = 0x1000;
/** TSS of the boot vCPU (0x68 bytes), then an all-zero 8 KiB I/O permission bitmap and a 0xff terminator. */
export const BOOT_TSS_START = 0x4000;
/** Left free for the guest's own AP start-up trampoline (SIPI vector 0x08). */
export const AP_TRAMPOLINE_START = 0x8000;
/** Identity page tables: PML4, one PDPT, four PDs of 2 MiB pages (the first 4 GiB). */
export const PML4_START = 0x9000;
export const PDPTE_START = 0xa000;
export const PDE_START = 0xb000;
/** Linux zero page (boot_params) for bzImage guests. */
export const ZERO_PAGE_START = 0x7000;
/** Boot vCPU kernel stack for direct entry: [0x10000, 0x20000). */
export const BOOT_STACK_TOP = 0x20000;
/** Top of the low RAM area; [EBDA_START, 1 MiB) is reported as reserved. */
export const EBDA_START = 0x9fc00;
/** MP floating pointer and table live in the EBDA. */
export const MPTABLE_START = 0x9fc00;
/** Kernels and the guest kit load at or above 1 MiB. */
export const HIMEM_START = 0x100000;
/** The 32-bit MMIO hole below 4 GiB; RAM above it is relocated past 4 GiB. */
export const MMIO_HOLE_START = 0xc000_0000;
export const MMIO_HOLE_END = 0x1_0000_0000;
export const IOAPIC_START = 0xfec0_0000;
export const APIC_START = 0xfee0_0000;

// GDT selectors for the direct long-mode entry.
export const GDT_KERNEL_CODE = 0x08;
export const GDT_KERNEL_DATA = 0x10;
export const GDT_USER_DATA = 0x18;
export const GDT_USER_CODE = 0x20;
export const GDT_TSS = 0x28;

// Legacy ports.
export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
export const I8042_PORT = 0x60;
export const CMOS_PORT = 0x70;
/** Debug-exit port: a write ends the VM with (value & 0xff) as its exit status. */
export const DEBUG_EXIT_PORT = 0xf4;

/** virtio-mmio transports: device i at VIRTIO_MMIO_START + i * 4 KiB, interrupt GSI VIRTIO_GSI_BASE + i (IOAPIC only). */
export const VIRTIO_MMIO_START = 0xd000_0000;
export const VIRTIO_MMIO_STRIDE = 0x1000;
export const VIRTIO_GSI_BASE = 16;
export const VIRTIO_MAX_DEVICES = 8;
