/*
 * swapvisor guest kit: the tiny CPL0 kernel stub. Everything here runs emulated on PVM hosts (~1.5M instr/s),
 * so it does as little as possible: command line, TSC/LAPIC calibration, tables for the PVH path, traps.
 * No SSE, popcnt, lzcnt, cmpxchg16b or xsave may appear here (the flags keep gcc to general registers).
 */
#include "guest.h"

struct kinfo kinfo;

extern u64 gdt[];
extern u8 gdt_ptr[];
extern u8 isr_table[];
extern u8 ap_tramp_start[], ap_tramp_end[];
extern u8 kstack_bsp_top[], kstack_ap_top[];
extern u64 ap_cr3;
void enter_user(u64 rip, u64 rsp, u64 arg) __attribute__((noreturn));

/* Interrupt frame as built by isr_common. */
struct frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vec, err, rip, cs, rflags, rsp, ss;
};

#define TSS_SIZE (0x68 + 8192 + 1)
static u8 tss_bsp[TSS_SIZE + 7] __attribute__((aligned(16)));
static u8 tss_ap[TSS_SIZE + 7] __attribute__((aligned(16)));
static u64 idt[512] __attribute__((aligned(4096)));
static struct {
	u16 limit;
	u64 base;
} __attribute__((packed)) idtr;
static char cmdline[512];
static u64 ap_rip, ap_rsp, ap_arg;

/* ---------------------------------------------------------------- low-level helpers */
static inline void lapic_w(u32 reg, u32 v) { *(volatile u32 *)(LAPIC_BASE + reg) = v; }
static inline u32 lapic_r(u32 reg) { return *(volatile u32 *)(LAPIC_BASE + reg); }
static inline void lapic_eoi(void) { lapic_w(0xb0, 0); }

static void kputc(char c) { outb(COM1, (u8)c); }
static void kputs(const char *s)
{
	while (*s)
		kputc(*s++);
}
static void kputhex(u64 v)
{
	int i;
	kputs("0x");
	for (i = 60; i > 0 && !(v >> i); i -= 4)
		;
	for (; i >= 0; i -= 4)
		kputc("0123456789abcdef"[(v >> i) & 15]);
}
static void kputdec(u64 v)
{
	char b[24];
	int n = 0;
	do
		b[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		kputc(b[--n]);
}

__attribute__((noreturn)) static void kexit(u8 status)
{
	outb(DEBUG_EXIT_PORT, status);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void delay_tsc(u64 cycles)
{
	u64 t0 = rdtsc();
	while (rdtsc() - t0 < cycles)
		;
}

/* ---------------------------------------------------------------- command line */
static void parse_cmdline(const char *src)
{
	u64 n = 0, i;
	int eq;
	char *p = cmdline;
	if (!src)
		return;
	for (i = 0; i < sizeof(cmdline) - 1 && src[i]; i++)
		cmdline[i] = src[i];
	cmdline[i] = 0;
	while (*p && n < 32) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			*p++ = 0;
		if (!*p)
			break;
		kinfo.key[n] = p;
		kinfo.val[n] = "";
		for (eq = 0; *p && *p != ' ' && *p != '\t' && *p != '\n'; p++) {
			if (*p == '=' && !eq) {
				*p = 0;
				kinfo.val[n] = p + 1;
				eq = 1;
			}
		}
		n++;
	}
	kinfo.nargs = n;
}

static const char *karg(const char *key)
{
	u64 i;
	for (i = 0; i < kinfo.nargs; i++)
		if (streq(kinfo.key[i], key))
			return kinfo.val[i];
	return NULL;
}

/* ---------------------------------------------------------------- clocks */
/* TSC against PIT channel 2 in mode 0, one-shot 10 ms (needs the port 0x61 gate/OUT2 bits). */
static u64 calibrate_tsc_pit2(void)
{
	const u32 count = 11932; /* 1193182 Hz * 10 ms */
	u64 a, b, t0;
	u32 loops = 0;
	outb(0x61, (u8)((inb(0x61) & ~0x02) | 0x01)); /* gate on, speaker off */
	outb(0x43, 0xb0);                             /* ch2, lo/hi, mode 0, binary */
	outb(0x42, count & 0xff);
	a = rdtsc();
	outb(0x42, count >> 8); /* counting starts with the MSB */
	b = rdtsc();
	t0 = a + (b - a) / 2;
	if (inb(0x61) & 0x20)
		return 0; /* OUT2 already high: no working speaker port (e.g. QEMU microvm) */
	do {
		a = rdtsc();
		b = inb(0x61);
	} while (!(b & 0x20) && ++loops < 10000000);
	b = rdtsc();
	u64 t1 = a + (b - a) / 2;
	return (t1 - t0) * 1193182ULL / count / 1000;
}

static u32 pit0_read(void)
{
	u32 lo, hi;
	outb(0x43, 0x00); /* latch ch0 */
	lo = inb(0x40);
	hi = inb(0x40);
	return lo | (hi << 8);
}

/* Fallback: PIT channel 0 (gate always high) counting down from 0xffff, read back by latching.
 * Each sample is stamped with the TSC midpoint around its (slow, emulated) read. ~20 ms. */
static u64 calibrate_tsc_pit0(void)
{
	u32 c0, c, d = 0, loops = 0;
	u64 a, b, t0, t1;
	outb(0x43, 0x30); /* ch0, lo/hi, mode 0; IRQ0 stays masked */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	a = rdtsc();
	c0 = pit0_read();
	b = rdtsc();
	t0 = a + (b - a) / 2;
	do {
		a = rdtsc();
		c = pit0_read();
		b = rdtsc();
		d = (c0 - c) & 0xffff;
	} while (d < 23864 && ++loops < 10000000);
	t1 = a + (b - a) / 2;
	if (!d)
		return 0;
	return (t1 - t0) * 1193182ULL / d / 1000;
}

/* LAPIC timer counts per ms at divide-by-1, measured against the TSC over ~5 ms. */
static u64 calibrate_lapic(void)
{
	u64 t0, t1, cyc = kinfo.tsc_khz * 5;
	u32 c0, c1;
	lapic_w(0x320, 0x10000 | VEC_TIMER); /* masked, one-shot */
	lapic_w(0x3e0, 0xb);                  /* divide by 1 */
	lapic_w(0x380, 0xffffffff);
	c0 = lapic_r(0x390);
	t0 = rdtsc();
	while (rdtsc() - t0 < cyc)
		;
	c1 = lapic_r(0x390);
	t1 = rdtsc();
	lapic_w(0x380, 0);
	return (u64)(c0 - c1) * kinfo.tsc_khz / (t1 - t0);
}

static inline void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}
#define MSR_TSC_DEADLINE 0x6e0

static u64 deadline_next, deadline_period;

static u64 set_timer(u64 period_us)
{
	u64 cnt;
	if (!period_us) {
		lapic_w(0x320, 0x10000 | VEC_TIMER);
		lapic_w(0x380, 0);
		if (kinfo.timer_mode == 1)
			wrmsr(MSR_TSC_DEADLINE, 0);
		deadline_period = 0;
		return 0;
	}
	if (kinfo.timer_mode == 1) {
		/* Absolute deadlines next += period: late ticks are caught up, so the average rate is exact. */
		deadline_period = period_us / 1000 * kinfo.tsc_khz + period_us % 1000 * kinfo.tsc_khz / 1000;
		lapic_w(0x320, 0x40000 | VEC_TIMER);
		deadline_next = rdtsc() + deadline_period;
		wrmsr(MSR_TSC_DEADLINE, deadline_next);
		return deadline_period;
	}
	if (!kinfo.lapic_khz)
		kinfo.lapic_khz = calibrate_lapic();
	cnt = kinfo.lapic_khz * period_us / 1000;
	if (cnt == 0)
		cnt = 1;
	if (cnt > 0xffffffffULL)
		cnt = 0xffffffffULL;
	lapic_w(0x3e0, 0xb);
	lapic_w(0x320, 0x20000 | VEC_TIMER); /* periodic */
	lapic_w(0x380, (u32)cnt);
	return cnt;
}

static void lapic_enable(void)
{
	lapic_w(0xf0, 0x100 | VEC_SPURIOUS); /* software enable */
	lapic_w(0x80, 0);                     /* TPR: accept everything */
}

/* ---------------------------------------------------------------- tables */
static void set_tss_desc(int idx, u8 *tss)
{
	u64 base = (u64)tss, limit = TSS_SIZE - 1;
	gdt[idx] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
		   (((base >> 24) & 0xff) << 56);
	gdt[idx + 1] = base >> 32;
}

static void init_tss(u8 *tss, u8 *stack_top)
{
	u64 sp = (u64)stack_top;
	int i;
	for (i = 0; i < 8; i++)
		tss[4 + i] = (u8)(sp >> (8 * i)); /* rsp0 */
	tss[0x66] = 0x68;                        /* I/O bitmap offset; the 8 KiB bitmap (bss) is all zero */
	tss[0x67] = 0;
	tss[TSS_SIZE - 1] = 0xff;                /* terminator */
}

static void build_idt(void)
{
	int i;
	for (i = 0; i < 256; i++) {
		u64 off = (u64)isr_table + 16 * (u64)i;
		u64 dpl = (i == 3) ? 3 : 0;
		idt[2 * i] = (off & 0xffff) | ((u64)SEL_KCODE << 16) | ((0x8eULL | (dpl << 5)) << 40) |
			     (((off >> 16) & 0xffff) << 48);
		idt[2 * i + 1] = off >> 32;
	}
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (u64)idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* ---------------------------------------------------------------- SMP */
static u64 start_ap(u64 rip, u64 rsp, u64 arg)
{
	u8 *dst = (u8 *)AP_TRAMPOLINE;
	u64 i, n = (u64)(ap_tramp_end - ap_tramp_start);
	for (i = 0; i < n; i++)
		dst[i] = ap_tramp_start[i];
	ap_rip = rip;
	ap_rsp = rsp;
	ap_arg = arg;
	lapic_w(0x310, 1u << 24);
	lapic_w(0x300, 0x4500); /* INIT, assert */
	delay_tsc(kinfo.tsc_khz * 10);
	for (i = 0; i < 2 && !kinfo.ap_started; i++) {
		lapic_w(0x310, 1u << 24);
		lapic_w(0x300, 0x4600 | (AP_TRAMPOLINE >> 12)); /* SIPI */
		delay_tsc(kinfo.tsc_khz / 5);                   /* 200 us */
	}
	return 0;
}

/* Called on the AP, in long mode on kstack_ap, from ap_entry64. */
__attribute__((noreturn)) void ap_kinit(void)
{
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS_AP));
	__asm__ volatile("lidt %0" : : "m"(idtr));
	lapic_enable();
	kinfo.ap_started = 1;
	enter_user(ap_rip, ap_rsp, ap_arg);
}

/* ---------------------------------------------------------------- IOAPIC */
static u32 ioapic_r(u64 base, u32 reg)
{
	*(volatile u32 *)base = reg;
	return *(volatile u32 *)(base + 0x10);
}
static void ioapic_w(u64 base, u32 reg, u32 v)
{
	*(volatile u32 *)base = reg;
	*(volatile u32 *)(base + 0x10) = v;
}

/* Routes IOAPIC pin gsi to vector: fixed delivery, physical destination APIC 0, edge, active high, unmasked.
 * GSIs past the first IOAPIC's pins go to a second one at +0x10000 (QEMU microvm's ioapic2). */
static u64 ioapic_route(u64 gsi, u64 vec)
{
	u64 base = IOAPIC_BASE;
	u32 pins = ((ioapic_r(base, 1) >> 16) & 0xff) + 1;
	if (vec < VEC_IRQ_BASE || vec >= VEC_IRQ_BASE + NR_IRQ_VECS)
		return (u64)-1;
	if (gsi >= pins) {
		gsi -= pins;
		base += 0x10000;
		pins = ((ioapic_r(base, 1) >> 16) & 0xff) + 1;
		if (gsi >= pins || pins == 256)
			return (u64)-1;
	}
	ioapic_w(base, 0x11 + 2 * (u32)gsi, 0);          /* destination APIC id 0 */
	ioapic_w(base, 0x10 + 2 * (u32)gsi, (u32)vec); /* fixed, physical, active high, edge, unmasked */
	return 0;
}

/* ---------------------------------------------------------------- traps */
__attribute__((noreturn)) static void fatal(struct frame *f)
{
	u64 cr2;
	kputs("EXC ");
	kputdec(f->vec);
	kputs(" rip=");
	kputhex(f->rip);
	kputs(" err=");
	kputhex(f->err);
	if (f->vec == 14) {
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
		kputs(" cr2=");
		kputhex(cr2);
	}
	kputc('\n');
	kexit(0x7f);
}

static u64 do_syscall(struct frame *f)
{
	switch (f->rax) {
	case SYS_EXIT:
		kexit((u8)f->rdi);
	case SYS_WAIT: {
		volatile u64 *p = (volatile u64 *)f->rdi;
		while (*p == f->rsi) {
			__asm__ volatile("sti; hlt; cli" ::: "memory");
			if (f->rdx)
				break;
		}
		return 0;
	}
	case SYS_TIMER:
		return set_timer(f->rdi);
	case SYS_IPI:
		lapic_w(0x310, (u32)f->rdi << 24);
		lapic_w(0x300, 0x4000 | (u32)(f->rsi & 0xff));
		return 0;
	case SYS_WRITE: {
		const char *b = (const char *)f->rdi;
		u64 n = f->rsi;
		__asm__ volatile("rep outsb" : "+S"(b), "+c"(n) : "d"(COM1) : "memory");
		return 0;
	}
	case SYS_START_AP:
		return start_ap(f->rdi, f->rsi, f->rdx);
	case SYS_IRQ:
		return ioapic_route(f->rdi, f->rsi);
	case SYS_CRASH:
		if (f->rdi == 1) {
			/* An IDT with no entries: the #UD can't be delivered, nor the #DF: triple fault. */
			struct { u16 limit; u64 base; } __attribute__((packed)) empty = { 0, 0 };
			__asm__ volatile("lidt %0; ud2" :: "m"(empty));
		}
		if (f->rdi == 2)
			__asm__ volatile("fninit; fwait"); /* x87: not emulated at CPL0 under PVM */
		return (u64)-1;
	}
	return (u64)-1;
}

void trap(struct frame *f)
{
	switch (f->vec) {
	case VEC_TIMER:
		kinfo.ticks++;
		if (deadline_period) {
			u64 now = rdtsc();
			deadline_next += deadline_period;
			if ((s64)(now - deadline_next) > (s64)(100 * deadline_period))
				deadline_next = now + deadline_period; /* paused for > 100 periods: resynchronise */
			wrmsr(MSR_TSC_DEADLINE, deadline_next);
		}
		lapic_eoi();
		return;
	case VEC_IPI:
		__atomic_fetch_add(&kinfo.ipis, 1, __ATOMIC_SEQ_CST);
		lapic_eoi();
		return;
	case VEC_SPURIOUS:
		return;
	case VEC_IRQ_BASE ... VEC_IRQ_BASE + NR_IRQ_VECS - 1:
		kinfo.irqs[f->vec - VEC_IRQ_BASE]++;
		lapic_eoi();
		return;
	case 3:
		if ((f->cs & 3) == 3) {
			f->rax = do_syscall(f);
			return;
		}
		fatal(f);
	}
	if (f->vec < 32)
		fatal(f);
	lapic_eoi(); /* stray interrupt */
}

/* ---------------------------------------------------------------- boot */
extern u8 user_stack_top[];
int user_main(void);

/* Common 64-bit init. path: 0 = direct entry (VMM tables), 1 = PVH (our tables, already in long mode). */
__attribute__((noreturn)) void kinit(u64 start_info, u64 path)
{
	struct hvm_start_info *si = (struct hvm_start_info *)start_info;
	const char *v;
	u64 cr3;

	kinfo.tsc_boot = rdtsc();
	kinfo.boot_path = path;
	kinfo.start_info = start_info;

	set_tss_desc(5, tss_bsp);
	set_tss_desc(7, tss_ap);
	init_tss(tss_ap, kstack_ap_top);
	if (path == 1) {
		init_tss(tss_bsp, kstack_bsp_top);
		__asm__ volatile("ltr %w0" : : "r"(SEL_TSS_BSP));
		build_idt();
	} else {
		__asm__ volatile("sidt %0" : "=m"(idtr)); /* the AP shares the VMM's IDT */
	}
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	ap_cr3 = cr3;

	if (si && si->magic == HVM_START_MAGIC && si->cmdline_paddr)
		parse_cmdline((const char *)si->cmdline_paddr);

	outb(0x21, 0xff); /* mask the 8259s */
	outb(0xa1, 0xff);

	v = karg("tsc_khz");
	if (v)
		kinfo.tsc_khz = parse_u64(v, NULL);
	if (!kinfo.tsc_khz && (kinfo.tsc_source = 1))
		kinfo.tsc_khz = calibrate_tsc_pit2();
	if (!kinfo.tsc_khz && (kinfo.tsc_source = 2))
		kinfo.tsc_khz = calibrate_tsc_pit0();
	if (!kinfo.tsc_khz && (kinfo.tsc_source = 3))
		kinfo.tsc_khz = 1000000; /* no PIT at all: guess 1 GHz */

	/* Timer: TSC-deadline if CPUID.1:ECX[24] says so (unless timer=periodic), else calibrated periodic. */
	{
		u32 a = 1, b, c = 0, d;
		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		v = karg("timer");
		kinfo.timer_mode = ((c >> 24) & 1) && !(v && streq(v, "periodic"));
	}
	lapic_enable();
	kinfo.tsc_user = rdtsc();
	enter_user((u64)user_main, (u64)user_stack_top, 0);
}
