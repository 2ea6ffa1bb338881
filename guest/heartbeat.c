/*
 * heartbeat: prints "hb <seq> <tsc> <maxgap_us>" every period and measures the largest gap in its own execution.
 *   period_us=1000  count=0 (forever)  mode=tick|spin
 */
#include "guest.h"

static void hb_line(u64 seq, u64 tsc, u64 maxgap_us)
{
	struct line l;
	l_init(&l);
	l_str(&l, "hb ");
	l_u64(&l, seq);
	l_str(&l, " ");
	l_u64(&l, tsc);
	l_str(&l, " ");
	l_u64(&l, maxgap_us);
	l_emit(&l);
}

int main(void)
{
	u64 period = arg_u64("period_us", 1000);
	u64 count = arg_u64("count", 0);
	const char *mode = arg_str("mode");
	int spin = mode && streq(mode, "spin");
	u64 seq = 0, maxgap = 0, prev, now;
	struct line l;

	if (!period)
		period = 1000;
	l_init(&l);
	l_str(&l, "heartbeat start period_us=");
	l_u64(&l, period);
	l_str(&l, " tsc_khz=");
	l_u64(&l, kinfo.tsc_khz);
	l_emit(&l);

	if (spin) {
		/* Largest gap between consecutive rdtsc reads; the time spent printing is not counted. */
		u64 ptsc = us_to_tsc(period), next;
		prev = rdtsc();
		next = prev + ptsc;
		while (!count || seq < count) {
			now = rdtsc();
			if (now - prev > maxgap)
				maxgap = now - prev;
			prev = now;
			if ((s64)(now - next) >= 0) {
				hb_line(++seq, now, tsc_to_us(maxgap));
				next += ptsc;
				prev = rdtsc();
				if ((s64)(prev - next) > (s64)ptsc)
					next = prev + ptsc; /* fell far behind (VM paused): do not burst */
			}
		}
	} else {
		/* One line per wake-up on the timer; the gap is measured between wake-ups, minus the period. */
		u64 seen, ptsc = us_to_tsc(period);
		sys_timer(period);
		seen = kinfo.ticks;
		prev = rdtsc();
		while (!count || seq < count) {
			sys_wait(&kinfo.ticks, seen);
			seen = kinfo.ticks;
			now = rdtsc();
			if (now - prev > ptsc && tsc_to_us(now - prev - ptsc) > maxgap)
				maxgap = tsc_to_us(now - prev - ptsc);
			prev = now;
			hb_line(++seq, now, maxgap);
		}
		sys_timer(0);
	}
	con_puts("hb done\n");
	return 0;
}
