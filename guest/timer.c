/*
 * timer: counts LAPIC timer interrupts and checks them against the TSC.
 *   hz=1000  secs=0 (forever)
 */
#include "guest.h"

int main(void)
{
	u64 hz = arg_u64("hz", 1000), secs = arg_u64("secs", 0);
	u64 period, t0, seen = 0, next, elapsed, expect, diff;
	struct line l;

	if (!hz || hz > 100000)
		hz = 1000;
	period = 1000000 / hz;
	l_init(&l);
	l_str(&l, "timer start hz=");
	l_u64(&l, hz);
	l_str(&l, " period_us=");
	l_u64(&l, period);
	l_str(&l, " tsc_khz=");
	l_u64(&l, kinfo.tsc_khz);
	l_str(&l, " tsc_src=");
	l_u64(&l, kinfo.tsc_source);
	l_str(&l, kinfo.timer_mode ? " timer=deadline" : " timer=periodic");
	l_emit(&l);

	sys_timer(period);
	t0 = rdtsc();
	seen = kinfo.ticks;
	next = seen + hz;
	for (;;) {
		sys_wait(&kinfo.ticks, seen);
		seen = kinfo.ticks;
		if (seen >= next) {
			l_str(&l, "timer ");
			l_u64(&l, seen);
			l_str(&l, " ");
			l_u64(&l, tsc_to_us(rdtsc() - t0));
			l_emit(&l);
			next += hz;
		}
		if (secs && seen >= secs * hz)
			break;
	}
	elapsed = tsc_to_us(rdtsc() - t0);
	sys_timer(0);
	/* expected ticks = elapsed_us / period_us (the programmed period, i.e. hz rounded to whole us) */
	expect = elapsed / period;
	diff = seen > expect ? seen - expect : expect - seen;
	l_str(&l, "timer done ");
	l_str(&l, diff * 50 <= expect ? "ok" : "BAD");
	l_str(&l, " ticks=");
	l_u64(&l, seen);
	l_str(&l, " expected=");
	l_u64(&l, expect);
	l_str(&l, " elapsed_us=");
	l_u64(&l, elapsed);
	l_emit(&l);
	return diff * 50 <= expect ? 0 : 1;
}
