/* swapvisor guest kit: shared declarations for the CPL0 stub and CPL3 workloads. */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long s64;
typedef unsigned long size_t;

#define NULL ((void *)0)

/* GDT selectors, identical in the VMM's tables and ours. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23
#define SEL_TSS_BSP 0x28
#define SEL_TSS_AP 0x38 /* only in our own GDT */
#define SEL_KCODE32 0x48 /* only in our own GDT (AP trampoline) */

/* Interrupt vectors. */
#define VEC_TIMER 0x20
#define VEC_IPI 0x40
#define VEC_IRQ_BASE 0x30 /* device interrupts: vectors 0x30..0x37 count into kinfo.irqs[vec - 0x30] */
#define NR_IRQ_VECS 8
#define VEC_SPURIOUS 0xff

/* Ports. */
#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4

#define LAPIC_BASE 0xfee00000ULL
#define IOAPIC_BASE 0xfec00000ULL
#define AP_TRAMPOLINE 0x8000

/* "Syscalls": int3 with the number in RAX, arguments in RDI, RSI, RDX; result in RAX. */
#define SYS_EXIT 0      /* (status) -> never returns */
#define SYS_WAIT 1      /* (u64 *ptr, u64 val, once): halt while *ptr == val; once != 0: at most one halt */
#define SYS_TIMER 2     /* (period_us): LAPIC periodic timer on VEC_TIMER, 0 = off; returns LAPIC counts/period */
#define SYS_IPI 3       /* (apic_id, vector): fixed IPI */
#define SYS_START_AP 4  /* (rip, rsp, arg): INIT-SIPI-SIPI APIC id 1, enters rip(arg) at CPL3 on rsp */
#define SYS_WRITE 5     /* (buf, len): rep outsb to COM1 from CPL0 */
#define SYS_CRASH 6     /* (kind): 1 = triple fault, 2 = an instruction PVM's CPL0 emulator lacks */
#define SYS_IRQ 7       /* (gsi, vector): IOAPIC pin -> vector (0x30..0x37), edge, active high, APIC 0, unmasked */

/* hvm_start_info (PVH), also what the direct entry passes in RBX. */
struct hvm_start_info {
	u32 magic;
	u32 version;
	u32 flags;
	u32 nr_modules;
	u64 modlist_paddr;
	u64 cmdline_paddr;
	u64 rsdp_paddr;
	u64 memmap_paddr;
	u32 memmap_entries;
	u32 reserved;
};
#define HVM_START_MAGIC 0x336ec578

struct hvm_memmap_entry {
	u64 addr;
	u64 size;
	u32 type;
	u32 reserved;
};
#define MEMMAP_RAM 1

/* State published by the kernel stub; everything is identity-mapped with U=1 so user code reads it directly. */
struct kinfo {
	u64 tsc_khz;
	u64 tsc_source;          /* 0 = cmdline tsc_khz=, 1 = PIT ch2 (port 0x61 gate), 2 = PIT ch0 read-back, 3 = guess */
	u64 lapic_khz;          /* LAPIC timer counts per ms (divide by 1), 0 until calibrated */
	u64 timer_mode;         /* 0 = LAPIC periodic (calibrated against the TSC), 1 = TSC-deadline */
	u64 boot_path;          /* 0 = direct long-mode entry, 1 = PVH */
	u64 start_info;         /* physical address of hvm_start_info */
	u64 tsc_boot;           /* rdtsc at kernel entry */
	u64 tsc_user;           /* rdtsc just before entering user mode */
	volatile u64 ticks;     /* timer interrupts on the BSP */
	volatile u64 ipis;      /* VEC_IPI interrupts (any CPU) */
	volatile u64 ap_started;
	u64 nargs;
	const char *key[32];
	const char *val[32];
	volatile u64 irqs[NR_IRQ_VECS]; /* interrupts seen on VEC_IRQ_BASE + i */
};
extern struct kinfo kinfo;
extern char __image_start[], __image_end[];

/* string.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int streq(const char *a, const char *b);
u64 parse_u64(const char *s, int *ok);

/* inline helpers */
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* ---- user-side library (ulib.c) ---- */
static inline u64 sys3(u64 n, u64 a, u64 b, u64 c)
{
	u64 r;
	__asm__ volatile("int3" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "memory");
	return r;
}
static inline void sys_wait(volatile u64 *p, u64 v) { sys3(SYS_WAIT, (u64)p, v, 0); }
/* Like sys_wait, but also returns after any other interrupt (e.g. a timer tick): callers loop and re-check. */
static inline void sys_wait_once(volatile u64 *p, u64 v) { sys3(SYS_WAIT, (u64)p, v, 1); }
static inline s64 sys_irq(u64 gsi, u64 vec) { return (s64)sys3(SYS_IRQ, gsi, vec, 0); }
static inline u64 sys_timer(u64 period_us) { return sys3(SYS_TIMER, period_us, 0, 0); }
static inline void sys_ipi(u64 apic, u64 vec) { sys3(SYS_IPI, apic, vec, 0); }
__attribute__((noreturn)) void sys_exit(int status);

const char *arg_str(const char *key);          /* NULL if absent */
u64 arg_u64(const char *key, u64 def);         /* def if absent or not a number */
u64 tsc_to_us(u64 tsc_delta);
u64 us_to_tsc(u64 us);

/* Console: build a line, then emit it with one rep outsb. */
struct line {
	u32 n;
	char b[160];
};
void l_init(struct line *l);
void l_str(struct line *l, const char *s);
void l_u64(struct line *l, u64 v);
void l_hex(struct line *l, u64 v); /* with 0x prefix */
void l_emit(struct line *l);       /* appends '\n' and writes the line */
void con_write(const char *s, size_t n);
void con_puts(const char *s);

int main(void); /* the workload, entered at CPL3 */

#endif
