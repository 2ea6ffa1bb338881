/*
 * blkcheck: writes self-describing 4 KiB blocks to a virtio-blk disk, flushes, reads them back and verifies them,
 * pass after pass. The block format (see docs/guest-kit.md) can be checked by the host in the image file.
 *   blocks=<capacity/8>  passes=1 (0 = forever)  seed=1  depth=8  ro=expect  discard=1  verify=<pass>
 *   event_idx=1  tick_us=100000
 */
#include "guest.h"
#include "virtio.h"

#define BLK_F_RO 5
#define BLK_F_FLUSH 9
#define BLK_F_DISCARD 13
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2

#define BLOCK 4096
#define SECTORS_PER_BLOCK 8
#define MAX_DEPTH 32
#define MAX_ERROR_LINES 10

struct req {
	struct {
		u32 type;
		u32 reserved;
		u64 sector;
	} hdr;
	struct {
		u64 sector;
		u32 num_sectors;
		u32 flags;
	} seg;
	u64 block;
	volatile u8 status;
	u8 busy;
};

static struct virtio_dev dev;
static struct virtq *q;
static struct req reqs[MAX_DEPTH];
static u8 bufs[MAX_DEPTH][BLOCK] __attribute__((aligned(4096)));
static u8 expect[BLOCK];
static u32 crc_table[256];
static u64 depth, seed, err_lines;

static void crc_init(void)
{
	u32 i, k, c;
	for (i = 0; i < 256; i++) {
		for (c = i, k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32). */
static u32 crc32(const u8 *p, size_t n)
{
	u32 c = 0xffffffffu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static inline void put64(u8 *p, u64 v) { memcpy(p, &v, 8); }
static inline u64 get64(const u8 *p)
{
	u64 v;
	memcpy(&v, p, 8);
	return v;
}

/* The block's expected contents for (seed, pass, index): see docs/guest-kit.md, "blkcheck block format". */
static void make_block(u8 *b, u64 pass, u64 i)
{
	u64 s = seed ^ (pass * 0x9e3779b97f4a7c15ULL) ^ ((i + 1) * 0xc2b2ae3d27d4eb4fULL);
	u64 *w = (u64 *)(b + 32);
	int k;
	s ^= s >> 30;
	s *= 0xbf58476d1ce4e5b9ULL;
	s ^= s >> 27;
	s *= 0x94d049bb133111ebULL;
	s ^= s >> 31;
	if (!s)
		s = 1;
	memcpy(b, "SVBLKCHK", 8);
	put64(b + 8, i);
	put64(b + 16, pass);
	put64(b + 24, seed);
	for (k = 0; k < (BLOCK - 40) / 8; k++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		w[k] = s;
	}
	put64(b + BLOCK - 8, crc32(b, BLOCK - 8));
}

static void err_line(u64 block, u64 pass, const char *what, u64 got, int with_got)
{
	struct line l;
	if (++err_lines > MAX_ERROR_LINES)
		return;
	l_init(&l);
	l_str(&l, "blk error block ");
	l_u64(&l, block);
	l_str(&l, " pass ");
	l_u64(&l, pass);
	l_str(&l, " ");
	l_str(&l, what);
	if (with_got) {
		l_str(&l, " ");
		l_hex(&l, got);
	}
	l_emit(&l);
}

/* Returns 0 if the block read back is right, else 1 (one line printed, up to MAX_ERROR_LINES per pass). */
static int check_block(const u8 *b, u64 pass, u64 i)
{
	u64 k;
	make_block(expect, pass, i);
	if (!memcmp(b, expect, BLOCK))
		return 0;
	if (memcmp(b, expect, 8))
		err_line(i, pass, "magic got", get64(b), 1);
	else if (get64(b + 8) != i)
		err_line(i, pass, "index got", get64(b + 8), 1);
	else if (get64(b + 16) != pass)
		err_line(i, pass, "pass got", get64(b + 16), 1);
	else if (get64(b + 24) != seed)
		err_line(i, pass, "seed got", get64(b + 24), 1);
	else if (get64(b + BLOCK - 8) != crc32(b, BLOCK - 8))
		err_line(i, pass, "crc got", get64(b + BLOCK - 8), 1);
	else {
		for (k = 32; k < BLOCK - 8 && b[k] == expect[k]; k++)
			;
		err_line(i, pass, "payload at", k, 1);
	}
	return 1;
}

/* Queues one request on slot r: header, optional data (written by the device if `in`), status. */
static int submit(struct req *r, u32 type, u64 sector, void *data, u32 len, int in)
{
	struct vbuf b[3];
	int n = 0;
	r->hdr.type = type;
	r->hdr.reserved = 0;
	r->hdr.sector = sector;
	r->status = 0xff;
	b[n].addr = &r->hdr;
	b[n++].len = sizeof(r->hdr);
	if (data) {
		b[n].addr = data;
		b[n++].len = len;
	}
	b[n].addr = (void *)&r->status;
	b[n++].len = 1;
	if (vq_add(q, b, (data && !in) ? 2 : 1, (data && in) ? 2 : 1, r) < 0)
		return -1;
	r->busy = 1;
	return 0;
}

/* Waits for the next completed request. */
static struct req *wait_one(void)
{
	for (;;) {
		u64 seen = virtio_ack(&dev);
		struct req *r = vq_pop(q, NULL);
		if (r) {
			r->busy = 0;
			return r;
		}
		if (vq_arm(q))
			continue;
		virtio_sleep(&dev, seen);
	}
}

/* One request, synchronously; returns its status. */
static u8 do_one(u32 type, u64 sector, void *data, u32 len, int in)
{
	struct req *r = &reqs[0];
	if (submit(r, type, sector, data, len, in) < 0)
		return 0xfe;
	vq_kick(q);
	while (wait_one() != r)
		;
	return r->status;
}

/* Writes (write=1) or reads and verifies blocks [0, nblocks) for `pass`, depth requests in flight.
 * Returns the number of bad blocks. */
static u64 run_phase(u64 nblocks, u64 pass, int write)
{
	u64 next = 0, done = 0, errors = 0, slot;
	while (done < nblocks) {
		int added = 0;
		for (slot = 0; slot < depth && next < nblocks; slot++) {
			struct req *r = &reqs[slot];
			if (r->busy)
				continue;
			r->block = next;
			if (write)
				make_block(bufs[slot], pass, next);
			if (submit(r, write ? BLK_T_OUT : BLK_T_IN, next * SECTORS_PER_BLOCK, bufs[slot], BLOCK, !write) < 0)
				break;
			next++;
			added = 1;
		}
		if (added)
			vq_kick(q);
		{
			struct req *r = wait_one();
			u64 i = (u64)(r - reqs);
			done++;
			if (r->status != BLK_S_OK) {
				err_line(r->block, pass, write ? "write status" : "read status", r->status, 1);
				errors++;
				virtio_check_status(&dev);
			} else if (!write) {
				errors += (u64)check_block(bufs[i], pass, r->block);
			}
		}
	}
	return errors;
}

static void pass_line(const char *what, u64 pass, u64 n, u64 errors)
{
	struct line l;
	l_init(&l);
	l_str(&l, what);
	l_u64(&l, pass);
	l_str(&l, " ok ");
	l_u64(&l, n);
	l_str(&l, " errors ");
	l_u64(&l, errors);
	l_emit(&l);
}

int main(void)
{
	static char id[21];
	struct line l;
	u64 capacity, nblocks, passes, pass, errors, total = 0, i;
	int ro;
	u8 st;
	const char *ro_arg = arg_str("ro"), *verify = arg_str("verify");

	crc_init();
	if (virtio_find(&dev, VIRTIO_ID_BLOCK, 0))
		return 2;
	if (virtio_init(&dev, (1ULL << BLK_F_RO) | (1ULL << BLK_F_FLUSH) | (1ULL << BLK_F_DISCARD),
			(int)arg_u64("event_idx", 1)))
		return 2;
	if (virtio_setup_queue(&dev, 0, 0))
		return 2;
	virtio_driver_ok(&dev);
	q = &dev.vq[0];
	if (arg_u64("tick_us", 100000))
		sys_timer(arg_u64("tick_us", 100000));

	capacity = vcfg_r64(&dev, 0);
	ro = virtio_has(&dev, BLK_F_RO);
	nblocks = arg_u64("blocks", capacity / SECTORS_PER_BLOCK);
	passes = arg_u64("passes", 1);
	seed = arg_u64("seed", 1);
	depth = arg_u64("depth", 8);
	if (depth < 1)
		depth = 1;
	if (depth > MAX_DEPTH)
		depth = MAX_DEPTH;
	if (depth > q->num / 3u)
		depth = q->num / 3u;

	l_init(&l);
	l_str(&l, "blk start capacity ");
	l_u64(&l, capacity);
	l_str(&l, " blocks ");
	l_u64(&l, nblocks);
	l_str(&l, " ro ");
	l_u64(&l, (u64)ro);
	l_emit(&l);
	if (nblocks > capacity / SECTORS_PER_BLOCK || !nblocks) {
		con_puts("blk error blocks out of range\n");
		return 2;
	}

	st = do_one(BLK_T_GET_ID, 0, id, 20, 1);
	l_str(&l, "blk id ");
	if (st == BLK_S_OK) {
		for (i = 0; i < 20 && id[i]; i++)
			if (id[i] <= ' ' || id[i] > '~')
				id[i] = '?';
		id[i] = 0;
		l_str(&l, id);
	} else {
		l_str(&l, "? status ");
		l_u64(&l, st);
	}
	l_emit(&l);

	if (ro_arg && streq(ro_arg, "expect")) {
		if (!ro) {
			con_puts("blk ro FAIL not-read-only\n");
			return 1;
		}
		make_block(bufs[0], 0, 0);
		st = do_one(BLK_T_OUT, 0, bufs[0], BLOCK, 0);
		if (st != BLK_S_IOERR && st != BLK_S_UNSUPP) {
			l_str(&l, "blk ro FAIL status ");
			l_u64(&l, st);
			l_emit(&l);
			return 1;
		}
		con_puts("blk ro ok\n");
	}

	if (arg_u64("discard", 0) && !ro) {
		if (!virtio_has(&dev, BLK_F_DISCARD)) {
			con_puts("blk discard unsupported\n");
		} else {
			struct req *r = &reqs[0];
			struct vbuf b[3] = { { &r->hdr, sizeof(r->hdr) }, { &r->seg, sizeof(r->seg) }, { (void *)&r->status, 1 } };
			r->hdr.type = BLK_T_DISCARD;
			r->hdr.reserved = 0;
			r->hdr.sector = 0;
			r->seg.sector = (nblocks - 1) * SECTORS_PER_BLOCK;
			r->seg.num_sectors = SECTORS_PER_BLOCK;
			r->seg.flags = 0;
			r->status = 0xff;
			vq_add(q, b, 2, 1, r);
			vq_kick(q);
			while (wait_one() != r)
				;
			st = r->status;
			if (st == BLK_S_OK)
				st = do_one(BLK_T_IN, (nblocks - 1) * SECTORS_PER_BLOCK, bufs[0], BLOCK, 1);
			if (st == BLK_S_OK) {
				con_puts("blk discard ok\n");
			} else {
				l_str(&l, "blk discard FAIL status ");
				l_u64(&l, st);
				l_emit(&l);
				total++;
			}
		}
	}

	if (verify) {
		pass = parse_u64(verify, NULL);
		err_lines = 0;
		errors = run_phase(nblocks, pass, 0);
		pass_line("blk verify ", pass, nblocks, errors);
		return errors || total ? 1 : 0;
	}
	if (ro) {
		if (ro_arg && streq(ro_arg, "expect"))
			return total ? 1 : 0;
		con_puts("blk error read-only device\n");
		return 1;
	}

	for (pass = 1; !passes || pass <= passes; pass++) {
		err_lines = 0;
		errors = run_phase(nblocks, pass, 1);
		if (virtio_has(&dev, BLK_F_FLUSH)) {
			st = do_one(BLK_T_FLUSH, 0, NULL, 0, 0);
			if (st != BLK_S_OK) {
				l_str(&l, "blk error flush status ");
				l_u64(&l, st);
				l_emit(&l);
				errors++;
			}
		}
		errors += run_phase(nblocks, pass, 0);
		pass_line("blk pass ", pass, nblocks, errors);
		total += errors;
	}
	l_str(&l, total ? "blk done errors " : "blk done ok ");
	l_u64(&l, total);
	l_emit(&l);
	return total ? 1 : 0;
}
