/*
 * smp: two vCPUs. The BSP starts the AP (INIT-SIPI-SIPI, trampoline at 0x8000), both bump a shared counter
 * with locked instructions in user mode, then the BSP sends fixed IPIs that the AP counts.
 *   iters=1000000  ipis=1000
 */
#include "guest.h"

static u8 ap_stack[65536] __attribute__((aligned(16)));
static volatile u64 counter, go, ap_ready, ap_done;
static u64 iters;

static inline u64 xadd(volatile u64 *p, u64 v)
{
	__asm__ volatile("lock xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static inline int cas(volatile u64 *p, u64 old, u64 new)
{
	u64 prev;
	__asm__ volatile("lock cmpxchgq %2, %1" : "=a"(prev), "+m"(*p) : "r"(new), "0"(old) : "memory");
	return prev == old;
}

static int ap_main(void)
{
	u64 i, seen;
	ap_ready = 1;
	while (!go)
		cpu_relax();
	for (i = 0; i < iters; i++) {
		u64 v;
		do
			v = counter;
		while (!cas(&counter, v, v + 1));
	}
	ap_done = 1;
	for (;;) {
		seen = kinfo.ipis;
		sys_wait(&kinfo.ipis, seen);
	}
	return 0;
}

static int wait_flag(volatile u64 *p, u64 val, u64 timeout_us)
{
	u64 t0 = rdtsc(), lim = us_to_tsc(timeout_us);
	while (*p < val)
		if (rdtsc() - t0 > lim)
			return 0;
	return 1;
}

static void bad(const char *why)
{
	struct line l;
	l_init(&l);
	l_str(&l, "smp done BAD ");
	l_str(&l, why);
	l_str(&l, " counter=");
	l_u64(&l, counter);
	l_str(&l, " ipis=");
	l_u64(&l, kinfo.ipis);
	l_emit(&l);
	sys_exit(1);
}

int main(void)
{
	u64 nipi = arg_u64("ipis", 1000), i, t0;
	struct line l;

	iters = arg_u64("iters", 1000000);
	l_init(&l);
	l_str(&l, "smp start iters=");
	l_u64(&l, iters);
	l_str(&l, " ipis=");
	l_u64(&l, nipi);
	l_emit(&l);

	t0 = rdtsc();
	sys3(SYS_START_AP, (u64)ap_main, (u64)(ap_stack + sizeof(ap_stack)), 0);
	if (!wait_flag(&ap_ready, 1, 2000000))
		bad("ap-did-not-start");
	l_str(&l, "smp ap up after_us=");
	l_u64(&l, tsc_to_us(rdtsc() - t0));
	l_emit(&l);

	go = 1;
	for (i = 0; i < iters; i++)
		xadd(&counter, 1);
	if (!wait_flag(&ap_done, 1, 30000000))
		bad("ap-did-not-finish");

	for (i = 0; i < nipi; i++) {
		sys_ipi(1, VEC_IPI);
		if (!wait_flag(&kinfo.ipis, i + 1, 200000))
			bad("ipi-timeout");
	}

	l_str(&l, "smp cpus=2 counter=");
	l_u64(&l, counter);
	l_str(&l, " ipis=");
	l_u64(&l, kinfo.ipis);
	l_emit(&l);
	if (counter != 2 * iters || kinfo.ipis != nipi)
		bad("mismatch");
	con_puts("smp done ok\n");
	return 0;
}
