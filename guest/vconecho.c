/*
 * vconecho: on a virtio-console (port 0 only, no MULTIPORT) writes "vcon hello\n", then sends every byte it
 * receives back unchanged. Zero-copy: a filled receive buffer goes out on the transmit queue as it is and is
 * posted for receiving again once the device has sent it, so echoes keep their order.
 *   event_idx=1  tick_us=100000
 */
#include "guest.h"
#include "virtio.h"

#define RXQ 0
#define TXQ 1
#define NBUF 32
#define BUF 512

static struct virtio_dev dev;
static struct virtq *rxq, *txq;
static u8 bufs[NBUF][BUF] __attribute__((aligned(4096)));
static char hello[] = "vcon hello\n";
static u64 rx, tx;

static void post_rx(u8 *b)
{
	struct vbuf v = { b, BUF };
	vq_add(rxq, &v, 0, 1, b);
}

static int send(void *b, u32 len)
{
	struct vbuf v = { b, len };
	if (vq_add(txq, &v, 1, 0, b) < 0)
		return -1;
	tx += len;
	return 0;
}

int main(void)
{
	u64 tick = arg_u64("tick_us", 100000), second, next, prx = 0, ptx = 0;
	struct line l;
	u32 i, n;
	if (virtio_find(&dev, VIRTIO_ID_CONSOLE, 0) || virtio_init(&dev, 0, (int)arg_u64("event_idx", 1)) ||
	    virtio_setup_queue(&dev, RXQ, 0) || virtio_setup_queue(&dev, TXQ, 0))
		return 2;
	rxq = &dev.vq[RXQ];
	txq = &dev.vq[TXQ];
	n = NBUF;
	if (n > rxq->num)
		n = rxq->num;
	if (n > txq->num - 1u)
		n = txq->num - 1u; /* every receive buffer can be in flight on tx, plus the greeting */
	for (i = 0; i < n; i++)
		post_rx(bufs[i]);
	virtio_driver_ok(&dev);
	vq_kick(rxq);
	if (tick)
		sys_timer(tick);
	con_puts("vcon start\n");
	send(hello, sizeof(hello) - 1);
	vq_kick(txq);

	second = us_to_tsc(1000000);
	next = rdtsc() + second;
	for (;;) {
		u64 seen = virtio_ack(&dev), now;
		int work = 0;
		u32 len;
		u8 *b;
		while ((b = vq_pop(txq, NULL))) {
			if (b != (u8 *)hello)
				post_rx(b);
			work = 1;
		}
		while ((b = vq_pop(rxq, &len))) {
			if (len > BUF)
				len = BUF;
			rx += len;
			if (!len || send(b, len) < 0)
				post_rx(b);
			work = 1;
		}
		vq_kick(txq);
		vq_kick(rxq);
		now = rdtsc();
		if ((s64)(now - next) >= 0) {
			if (rx != prx || tx != ptx) {
				l_init(&l);
				l_str(&l, "vcon stats rx ");
				l_u64(&l, rx);
				l_str(&l, " tx ");
				l_u64(&l, tx);
				l_emit(&l);
				prx = rx;
				ptx = tx;
			}
			virtio_check_status(&dev);
			next += second;
			if ((s64)(now - next) > 0)
				next = now + second;
		}
		if (work)
			continue;
		if (vq_arm(rxq) | vq_arm(txq))
			continue;
		virtio_sleep(&dev, seen);
	}
}
