/* swapvisor guest kit: user-mode (CPL3) library for the workloads. */
#include "guest.h"

__attribute__((noreturn)) void sys_exit(int status)
{
	sys3(SYS_EXIT, (u64)(u8)status, 0, 0);
	for (;;)
		cpu_relax();
}

const char *arg_str(const char *key)
{
	u64 i;
	for (i = 0; i < kinfo.nargs; i++)
		if (streq(kinfo.key[i], key))
			return kinfo.val[i];
	return NULL;
}

u64 arg_u64(const char *key, u64 def)
{
	const char *s = arg_str(key);
	int ok;
	u64 v;
	if (!s)
		return def;
	v = parse_u64(s, &ok);
	return ok ? v : def;
}

u64 tsc_to_us(u64 d)
{
	u64 k = kinfo.tsc_khz;
	return d / k * 1000 + d % k * 1000 / k;
}

u64 us_to_tsc(u64 us) { return us / 1000 * kinfo.tsc_khz + us % 1000 * kinfo.tsc_khz / 1000; }

/* One rep outsb per line, then one LSR read. */
void con_write(const char *s, size_t n)
{
	const char *mode = arg_str("con");
	if (mode && streq(mode, "kernel")) {
		sys3(SYS_WRITE, (u64)s, n, 0);
		return;
	}
	if (mode && streq(mode, "byte")) {
		while (n--)
			outb(COM1, (u8)*s++);
		return;
	}
	__asm__ volatile("rep outsb" : "+S"(s), "+c"(n) : "d"(COM1) : "memory");
	/* Wait for the transmitter once per line. A hypervisor that queues data-register writes
	 * (KVM coalesced PIO) delivers the whole line at this one exit. */
	(void)inb(COM1 + 5);
}

void con_puts(const char *s) { con_write(s, strlen(s)); }

void l_init(struct line *l) { l->n = 0; }

void l_str(struct line *l, const char *s)
{
	while (*s && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = *s++;
}

void l_u64(struct line *l, u64 v)
{
	char t[24];
	int n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = t[--n];
}

void l_hex(struct line *l, u64 v)
{
	int i;
	l_str(l, "0x");
	for (i = 60; i > 0 && !(v >> i); i -= 4)
		;
	for (; i >= 0 && l->n < sizeof(l->b) - 1; i -= 4)
		l->b[l->n++] = "0123456789abcdef"[(v >> i) & 15];
}

void l_emit(struct line *l)
{
	l->b[l->n++] = '\n';
	con_write(l->b, l->n);
	l->n = 0;
}

/* First CPL3 code on the BSP. fault=ud|gp|pf provokes an exception to test the kernel's EXC path;
 * fault=triple and fault=emul crash the whole VM from CPL0, to test the hypervisor's fault reports. */
int user_main(void)
{
	const char *f = arg_str("fault");
	if (f) {
		if (streq(f, "ud"))
			__asm__ volatile("ud2");
		if (streq(f, "gp"))
			__asm__ volatile("cli");
		if (streq(f, "pf"))
			*(volatile u64 *)0x4000000000ULL = 1;
		if (streq(f, "triple"))
			sys3(SYS_CRASH, 1, 0, 0);
		if (streq(f, "emul"))
			sys3(SYS_CRASH, 2, 0, 0);
	}
	return main();
}
