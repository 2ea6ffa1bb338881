/*
 * iobench: virtio-blk 4 KiB random I/O for a fixed time, `depth` requests in flight, at random 4 KiB-aligned
 * offsets over the whole disk; prints "io <mode> ops <n> us <elapsed> iops <n>" and exits 0. It measures; it
 * does not verify data (blkcheck does).
 *   mode=randread|randwrite  secs=5  depth=8 (1..32, at most QueueNum/3)  seed=1  event_idx=1  tick_us=100000
 * With report_ms=N (0 = off) it also prints "io tick <seq> <ops> <maxgap_us>" every N ms: seq from 1, ops done so
 * far, and the longest time without any completion during that period (for measuring pauses such as a hot swap).
 */
#include "guest.h"
#include "virtio.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_S_OK 0
#define BLOCK 4096
#define SECTORS_PER_BLOCK 8
#define MAX_DEPTH 32

struct req {
	struct {
		u32 type;
		u32 reserved;
		u64 sector;
	} hdr;
	volatile u8 status;
};

static struct virtio_dev dev;
static struct virtq *q;
static struct req reqs[MAX_DEPTH];
static u8 bufs[MAX_DEPTH][BLOCK] __attribute__((aligned(4096)));
static u64 rng;

/* xorshift64 (13, 7, 17); never 0. */
static u64 next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Queues request slot r at a random block of [0, nblocks). Returns 0, or -1 if the ring is full. */
static int submit(struct req *r, u32 type, u64 nblocks)
{
	struct vbuf b[3];
	u64 i = (u64)(r - reqs);
	r->hdr.type = type;
	r->hdr.reserved = 0;
	r->hdr.sector = (next_random() % nblocks) * SECTORS_PER_BLOCK;
	r->status = 0xff;
	b[0].addr = &r->hdr;
	b[0].len = sizeof(r->hdr);
	b[1].addr = bufs[i];
	b[1].len = BLOCK;
	b[2].addr = (void *)&r->status;
	b[2].len = 1;
	return vq_add(q, b, type == BLK_T_OUT ? 2 : 1, type == BLK_T_OUT ? 1 : 2, r);
}

/* Waits for at least one completion and returns every completed request's slot to `done` (count returned). */
static u32 reap(struct req **done)
{
	u32 n = 0;
	struct req *r;
	for (;;) {
		u64 seen = virtio_ack(&dev);
		while ((r = vq_pop(q, NULL)) != NULL)
			done[n++] = r;
		if (n)
			return n;
		if (vq_arm(q))
			continue;
		virtio_sleep(&dev, seen);
	}
}

/* Periodic progress for report_ms: the longest interval between consecutive completion batches per period. */
static u64 tick_seq, tick_next, tick_period, last_done, max_gap;

static void tick_note(u64 now, u64 ops)
{
	struct line l;
	if (now - last_done > max_gap)
		max_gap = now - last_done;
	last_done = now;
	if (!tick_period || now < tick_next)
		return;
	l_init(&l);
	l_str(&l, "io tick ");
	l_u64(&l, ++tick_seq);
	l_str(&l, " ");
	l_u64(&l, ops);
	l_str(&l, " ");
	l_u64(&l, tsc_to_us(max_gap));
	l_emit(&l);
	max_gap = 0;
	last_done = rdtsc();
	tick_next = last_done + tick_period;
}

static void fail(const char *what, u64 v)
{
	struct line l;
	l_init(&l);
	l_str(&l, "io error ");
	l_str(&l, what);
	l_str(&l, " ");
	l_u64(&l, v);
	l_emit(&l);
}

int main(void)
{
	static struct req *done[MAX_DEPTH];
	struct line l;
	const char *mode = arg_str("mode");
	u64 capacity, nblocks, depth, secs, t0, deadline, ops = 0, bad = 0, us, i;
	u32 type, n, k;
	int write;

	if (!mode)
		mode = "randread";
	write = streq(mode, "randwrite");
	if (!write && !streq(mode, "randread")) {
		con_puts("io error mode must be randread or randwrite\n");
		return 2;
	}
	type = write ? BLK_T_OUT : BLK_T_IN;
	if (virtio_find(&dev, VIRTIO_ID_BLOCK, 0))
		return 2;
	if (virtio_init(&dev, 0, (int)arg_u64("event_idx", 1)))
		return 2;
	if (virtio_setup_queue(&dev, 0, 0))
		return 2;
	virtio_driver_ok(&dev);
	q = &dev.vq[0];
	if (arg_u64("tick_us", 100000))
		sys_timer(arg_u64("tick_us", 100000));

	capacity = vcfg_r64(&dev, 0);
	nblocks = capacity / SECTORS_PER_BLOCK;
	secs = arg_u64("secs", 5);
	rng = arg_u64("seed", 1) * 0x9e3779b97f4a7c15ULL;
	if (!rng)
		rng = 1;
	depth = arg_u64("depth", 8);
	if (depth < 1)
		depth = 1;
	if (depth > MAX_DEPTH)
		depth = MAX_DEPTH;
	if (depth > q->num / 3u)
		depth = q->num / 3u;
	if (!nblocks) {
		con_puts("io error disk smaller than 4 KiB\n");
		return 2;
	}
	for (i = 0; i < depth; i++)
		memset(bufs[i], (int)(0x5a ^ i), BLOCK);

	l_init(&l);
	l_str(&l, "io start mode ");
	l_str(&l, mode);
	l_str(&l, " blocks ");
	l_u64(&l, nblocks);
	l_str(&l, " depth ");
	l_u64(&l, depth);
	l_str(&l, " secs ");
	l_u64(&l, secs);
	l_emit(&l);

	/* Keep `depth` requests in flight until the deadline, then drain the ones still out. */
	t0 = rdtsc();
	deadline = t0 + us_to_tsc(secs * 1000000ULL);
	tick_period = us_to_tsc(arg_u64("report_ms", 0) * 1000ULL);
	last_done = t0;
	tick_next = t0 + tick_period;
	for (i = 0; i < depth; i++)
		if (submit(&reqs[i], type, nblocks) < 0) {
			fail("ring full at", i);
			return 2;
		}
	vq_kick(q);
	for (u64 inflight = depth; inflight;) {
		int more = rdtsc() < deadline;
		n = reap(done);
		inflight -= n;
		tick_note(rdtsc(), ops + n);
		for (k = 0; k < n; k++) {
			if (done[k]->status != BLK_S_OK && bad++ < 5)
				fail("status", done[k]->status);
			ops++;
			if (more) {
				submit(done[k], type, nblocks);
				inflight++;
			}
		}
		if (more)
			vq_kick(q);
	}
	us = tsc_to_us(rdtsc() - t0);

	l_init(&l);
	l_str(&l, "io ");
	l_str(&l, mode);
	l_str(&l, " ops ");
	l_u64(&l, ops);
	l_str(&l, " us ");
	l_u64(&l, us);
	l_str(&l, " iops ");
	l_u64(&l, us ? ops * 1000000ULL / us : 0);
	l_emit(&l);
	if (bad) {
		fail("failed requests", bad);
		return 1;
	}
	return 0;
}
