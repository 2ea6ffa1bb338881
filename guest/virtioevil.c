/*
 * virtioevil: a hostile driver for the hypervisor's tests. On the virtio-rng device (the simplest; the transport is the same for all) it
 * breaks the protocol in one way per round, checks that the device answers as the spec says (DEVICE_NEEDS_RESET,
 * or FEATURES_OK refused), resets it, and finally drives it correctly once to show it recovered:
 *   evil <case> ok | evil <case> FAIL status 0x..   ...   evil recovered ok | evil recovered FAIL
 * Cases: loop (a descriptor chain that loops), oob (a buffer outside guest RAM), wrap (address + length past
 * 2^64), nested (an indirect table inside an indirect table), size3 (a queue size that is not a power of two),
 * features (a feature bit that was never offered), avail (an available index far ahead of the ring).
 * It only writes the device's registers and its own ring memory; it needs no interrupts.
 */
#include "guest.h"
#include "virtio.h"

#define QSIZE 8
#define DESC_F_INDIRECT 4

static struct virtio_dev dev;
static volatile struct virtq_desc ring_desc[QSIZE] __attribute__((aligned(4096)));
static volatile u16 ring_avail[3 + QSIZE] __attribute__((aligned(4096)));
static volatile u32 ring_used[2 + 2 * QSIZE + 1] __attribute__((aligned(4096)));
static volatile struct virtq_desc indirect[2] __attribute__((aligned(64)));
static u8 buf[64] __attribute__((aligned(64)));
static int failures;

static u32 st(void) { return vreg_r(&dev, VIRTIO_MMIO_STATUS); }

/* Reset and negotiate VERSION_1 (plus `extra` feature bits); returns the status after FEATURES_OK. */
static u32 negotiate(u64 extra)
{
	u64 f = (1ULL << VIRTIO_F_VERSION_1) | extra;
	vreg_w(&dev, VIRTIO_MMIO_STATUS, 0);
	vreg_w(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vreg_w(&dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vreg_w(&dev, VIRTIO_MMIO_DRIVER_FEATURES, (u32)f);
	vreg_w(&dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vreg_w(&dev, VIRTIO_MMIO_DRIVER_FEATURES, (u32)(f >> 32));
	vreg_w(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return st();
}

/* Queue 0 on our own ring memory with `num` entries, then DRIVER_OK; returns the status. */
static u32 setup_queue(u32 num)
{
	memset((void *)ring_desc, 0, sizeof(ring_desc));
	memset((void *)ring_avail, 0, sizeof(ring_avail));
	memset((void *)ring_used, 0, sizeof(ring_used));
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_NUM, num);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (u32)(u64)ring_desc);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (u32)(u64)ring_avail);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (u32)(u64)ring_used);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_READY, 1);
	vreg_w(&dev, VIRTIO_MMIO_STATUS, st() | VIRTIO_STATUS_DRIVER_OK);
	return st();
}

/* Makes head 0 available `count` entries ahead (1 = normal) and notifies queue 0. */
static void offer(u16 count)
{
	ring_avail[2] = 0;
	barrier();
	ring_avail[1] = count;
	mfence();
	vreg_w(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void report(const char *what, int ok)
{
	struct line l;
	u32 s = st();
	l_init(&l);
	l_str(&l, "evil ");
	l_str(&l, what);
	if (ok) {
		l_str(&l, " ok");
	} else {
		l_str(&l, " FAIL status ");
		l_hex(&l, s);
		failures++;
	}
	l_emit(&l);
}

/* The device must say NEEDS_RESET after the broken offer: poll its status a while. */
static void expect_needs_reset(const char *what)
{
	u32 i;
	for (i = 0; i < 100000; i++)
		if (st() & VIRTIO_STATUS_NEEDS_RESET)
			break;
	report(what, (st() & VIRTIO_STATUS_NEEDS_RESET) != 0);
}

static void broken_chain(const char *what, u64 addr, u32 len, u16 flags, u16 next)
{
	negotiate(0);
	setup_queue(QSIZE);
	ring_desc[0].addr = addr;
	ring_desc[0].len = len;
	ring_desc[0].flags = flags;
	ring_desc[0].next = next;
	offer(1);
	expect_needs_reset(what);
}

int main(void)
{
	u32 s, i, used = 0;
	if (virtio_find(&dev, VIRTIO_ID_RNG, 0)) {
		con_puts("evil no device\n");
		return 2;
	}
	broken_chain("loop", (u64)buf, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	broken_chain("oob", 0x4000000000ULL, 64, VIRTQ_DESC_F_WRITE, 0);
	broken_chain("wrap", 0xfffffffffffffff0ULL, 64, VIRTQ_DESC_F_WRITE, 0);
	indirect[0].addr = (u64)indirect;
	indirect[0].len = 32;
	indirect[0].flags = DESC_F_INDIRECT;
	broken_chain("nested", (u64)indirect, 32, DESC_F_INDIRECT, 0);

	negotiate(0);
	s = setup_queue(3);
	expect_needs_reset("size3");
	(void)s;

	s = negotiate(1ULL << 40);
	report("features", !(s & VIRTIO_STATUS_FEATURES_OK));

	negotiate(0);
	setup_queue(QSIZE);
	ring_desc[0].addr = (u64)buf;
	ring_desc[0].len = 16;
	ring_desc[0].flags = VIRTQ_DESC_F_WRITE;
	offer(1000);
	expect_needs_reset("avail");

	/* A correct request after a reset: a 16-byte writable buffer, returned used. */
	negotiate(0);
	s = setup_queue(QSIZE);
	ring_desc[0].addr = (u64)buf;
	ring_desc[0].len = 16;
	ring_desc[0].flags = VIRTQ_DESC_F_WRITE;
	offer(1);
	for (i = 0; i < 100000 && !used; i++) {
		used = *(volatile u16 *)((u64)ring_used + 2);
		if (!used)
			(void)st();
	}
	report("recovered", used == 1 && !(st() & VIRTIO_STATUS_NEEDS_RESET) && (s & VIRTIO_STATUS_DRIVER_OK));
	vreg_w(&dev, VIRTIO_MMIO_STATUS, 0);
	return failures ? 1 : 0;
}
