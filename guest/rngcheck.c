/*
 * rngcheck: reads random bytes from a virtio-rng device in 64-byte requests and sanity-checks them: not all
 * bytes equal, and no two consecutive full 64-byte reads identical.
 *   bytes=4096  loop=0 (1 = forever, a stats line about once a second)  event_idx=1  tick_us=100000
 */
#include "guest.h"
#include "virtio.h"

#define CHUNK 64

static struct virtio_dev dev;
static u8 bufs[2][CHUNK] __attribute__((aligned(64)));

/* One request; returns the number of bytes the device wrote. */
static u32 rng_read(u8 *b)
{
	struct virtq *q = &dev.vq[0];
	struct vbuf v = { b, CHUNK };
	u32 len = 0;
	vq_add(q, &v, 0, 1, b);
	vq_kick(q);
	for (;;) {
		u64 seen = virtio_ack(&dev);
		if (vq_pop(q, &len))
			return len > CHUNK ? CHUNK : len;
		if (vq_arm(q))
			continue;
		virtio_sleep(&dev, seen);
	}
}

static int fail(const char *why, u64 total)
{
	struct line l;
	l_init(&l);
	l_str(&l, "rng FAIL ");
	l_str(&l, why);
	l_str(&l, " after ");
	l_u64(&l, total);
	l_emit(&l);
	return 1;
}

int main(void)
{
	u64 want = arg_u64("bytes", 4096), loop = arg_u64("loop", 0), tick = arg_u64("tick_us", 100000);
	u64 total = 0, reads = 0, empty = 0, second, next;
	u32 len, plen = 0, i;
	int cur = 0, varied = 0;
	u8 first = 0;
	struct line l;

	if (virtio_find(&dev, VIRTIO_ID_RNG, 0) || virtio_init(&dev, 0, (int)arg_u64("event_idx", 1)) ||
	    virtio_setup_queue(&dev, 0, 0))
		return 2;
	virtio_driver_ok(&dev);
	if (tick)
		sys_timer(tick);
	second = us_to_tsc(1000000);
	next = rdtsc() + second;
	while (loop || total < want) {
		len = rng_read(bufs[cur]);
		reads++;
		if (!len) {
			if (++empty > 1000)
				return fail("no-data", total);
			continue;
		}
		if (!total)
			first = bufs[cur][0];
		for (i = 0; i < len && !varied; i++)
			varied = bufs[cur][i] != first;
		if (len == CHUNK && plen == CHUNK && !memcmp(bufs[0], bufs[1], CHUNK))
			return fail("repeat", total);
		total += len;
		plen = len;
		cur ^= 1;
		if (total >= 4096 && !varied)
			return fail("all-equal", total);
		if (loop && (s64)(rdtsc() - next) >= 0) {
			l_init(&l);
			l_str(&l, "rng stats bytes ");
			l_u64(&l, total);
			l_str(&l, " reads ");
			l_u64(&l, reads);
			l_emit(&l);
			virtio_check_status(&dev);
			next += second;
			if ((s64)(rdtsc() - next) > 0)
				next = rdtsc() + second;
		}
	}
	if (!varied)
		return fail("all-equal", total);
	l_init(&l);
	l_str(&l, "rng ok ");
	l_u64(&l, total);
	l_emit(&l);
	return 0;
}
