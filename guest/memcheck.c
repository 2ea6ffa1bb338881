/*
 * memcheck: dirties and verifies N MiB of RAM above the image, one generation per pass.
 *   mib=8  passes=0 (forever)  period_us=0 (if set: one pass per timer period)
 */
#include "guest.h"

static inline u64 pattern(u64 addr, u64 gen)
{
	u64 x = addr ^ (gen * 0x9e3779b97f4a7c15ULL);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

static void fail(u64 addr, u64 want, u64 got)
{
	struct line l;
	l_init(&l);
	l_str(&l, "mc FAIL addr=");
	l_hex(&l, addr);
	l_str(&l, " want=");
	l_hex(&l, want);
	l_str(&l, " got=");
	l_hex(&l, got);
	l_emit(&l);
	sys_exit(1);
}

/* First RAM range of `size` bytes at or above `from` (2 MiB aligned), below 4 GiB; 0 if none. */
static u64 find_region(u64 from, u64 size)
{
	struct hvm_start_info *si = (struct hvm_start_info *)kinfo.start_info;
	struct hvm_memmap_entry *e;
	u64 i;
	if (!si || si->magic != HVM_START_MAGIC || si->version < 1 || !si->memmap_paddr)
		return 0;
	e = (struct hvm_memmap_entry *)si->memmap_paddr;
	for (i = 0; i < si->memmap_entries; i++) {
		u64 lo = e[i].addr, hi = e[i].addr + e[i].size;
		if (e[i].type != MEMMAP_RAM)
			continue;
		if (lo < from)
			lo = from;
		lo = (lo + 0x1fffff) & ~0x1fffffULL;
		if (lo + size <= hi && lo + size <= 0x100000000ULL)
			return lo;
	}
	return 0;
}

int main(void)
{
	u64 mib = arg_u64("mib", 8), passes = arg_u64("passes", 0), period = arg_u64("period_us", 0);
	u64 size = mib << 20, base, words, g, i, seen = 0;
	volatile u64 *m;
	struct line l;

	base = find_region((u64)__image_end, size);
	l_init(&l);
	if (!base || !mib) {
		l_str(&l, "mc ERROR: ");
		l_u64(&l, mib);
		l_str(&l, " MiB do not fit in RAM above ");
		l_hex(&l, (u64)__image_end);
		l_emit(&l);
		return 2;
	}
	l_str(&l, "memcheck start mib=");
	l_u64(&l, mib);
	l_str(&l, " base=");
	l_hex(&l, base);
	l_emit(&l);

	m = (volatile u64 *)base;
	words = size / 8;
	for (i = 0; i < words; i++)
		m[i] = pattern(base + 8 * i, 0);
	if (period) {
		sys_timer(period);
		seen = kinfo.ticks;
	}
	for (g = 0; !passes || g < passes; g++) {
		if (period) {
			sys_wait(&kinfo.ticks, seen);
			seen = kinfo.ticks;
		}
		for (i = 0; i < words; i++) {
			u64 a = base + 8 * i, got = m[i], want = pattern(a, g);
			if (got != want)
				fail(a, want, got);
			m[i] = pattern(a, g + 1);
		}
		l_str(&l, "mc pass ");
		l_u64(&l, g + 1);
		l_str(&l, " ok");
		l_emit(&l);
	}
	con_puts("mc done\n");
	return 0;
}
