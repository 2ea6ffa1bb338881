/*
 * netecho: a virtio-net responder. Answers ARP requests and ICMP echo requests for its IPv4 address and sends
 * every UDP datagram addressed to it back to the sender (MACs, IPs and ports swapped, UDP checksum 0).
 * Prints "net stats rx <n> tx <n> drops <n>" about once a second.
 *   ip=10.77.0.2  event_idx=1  tick_us=100000  secs=0 (forever)
 */
#include "guest.h"
#include "virtio.h"

#define NET_F_MAC 5
#define NET_HDR 12 /* struct virtio_net_hdr with num_buffers (VIRTIO_F_VERSION_1) */
#define BUF 2048
#define NBUF 128
#define RXQ 0
#define TXQ 1

static struct virtio_dev dev;
static struct virtq *rxq, *txq;
static u8 rxbuf[NBUF][BUF] __attribute__((aligned(4096)));
static u8 txbuf[NBUF][BUF] __attribute__((aligned(4096)));
static u8 *tx_free[NBUF];
static u32 ntx_free;
static u8 mac[6], ip[4];
static u64 rx, tx, drops;

static inline u16 get16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static inline void put16(u8 *p, u16 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

/* Internet checksum (RFC 1071) of n bytes. */
static u16 csum(const u8 *p, u32 n)
{
	u32 s = 0;
	for (; n > 1; p += 2, n -= 2)
		s += get16(p);
	if (n)
		s += (u32)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (u16)~s;
}

static int parse_ip(const char *s, u8 *out)
{
	int i;
	for (i = 0; i < 4; i++) {
		u32 v = 0, any = 0;
		for (; *s >= '0' && *s <= '9'; s++, any = 1)
			v = v * 10 + (u32)(*s - '0');
		if (!any || v > 255 || (i < 3 && *s++ != '.'))
			return -1;
		out[i] = (u8)v;
	}
	return *s ? -1 : 0;
}

static void post_rx(u8 *b)
{
	struct vbuf v = { b, BUF };
	vq_add(rxq, &v, 0, 1, b);
}

static void send(u8 *b, u32 len)
{
	struct vbuf v = { b, len };
	if (vq_add(txq, &v, 1, 0, b) < 0) {
		tx_free[ntx_free++] = b;
		drops++;
		return;
	}
	tx++;
}

/* Builds the reply to frame f (len bytes, after the virtio header) in a tx buffer; returns 1 if one was sent. */
static int handle(const u8 *f, u32 len)
{
	u8 *t, *e;
	u16 type;
	if (len < 14)
		return 0;
	type = get16(f + 12);
	if (type == 0x0806) {
		/* ARP request for our address: htype 1, ptype IPv4, hlen 6, plen 4, oper 1. */
		if (len < 42 || get16(f + 14) != 1 || get16(f + 16) != 0x0800 || f[18] != 6 || f[19] != 4 ||
		    get16(f + 20) != 1 || memcmp(f + 38, ip, 4))
			return 0;
	} else if (type == 0x0800) {
		u32 ihl = (u32)(f[14] & 15) * 4, tot = get16(f + 16);
		if ((f[14] >> 4) != 4 || ihl < 20 || tot < ihl || 14 + tot > len || memcmp(f + 30, ip, 4))
			return 0;
		if (f[23] == 1) {
			if (tot < ihl + 8 || f[14 + ihl] != 8) /* ICMP echo request */
				return 0;
		} else if (f[23] != 17 || tot < ihl + 8) {
			return 0;
		}
		len = 14 + tot;
	} else {
		return 0;
	}
	if (!ntx_free) {
		drops++;
		return 0;
	}
	t = tx_free[--ntx_free];
	memset(t, 0, NET_HDR);
	e = t + NET_HDR;
	memcpy(e, f, len);
	memcpy(e, f + 6, 6); /* to the sender */
	memcpy(e + 6, mac, 6);
	if (type == 0x0806) {
		put16(e + 20, 2);          /* reply */
		memcpy(e + 32, f + 22, 10); /* target = the requester's sha, spa */
		memcpy(e + 22, mac, 6);
		memcpy(e + 28, ip, 4);
	} else {
		u32 ihl = (u32)(e[14] & 15) * 4, tot = get16(e + 16);
		u8 *l4 = e + 14 + ihl;
		memcpy(e + 26, f + 30, 4);
		memcpy(e + 30, f + 26, 4);
		e[22] = 64; /* TTL */
		put16(e + 24, 0);
		put16(e + 24, csum(e + 14, ihl));
		if (e[23] == 1) {
			l4[0] = 0; /* echo reply */
			put16(l4 + 2, 0);
			put16(l4 + 2, csum(l4, tot - ihl));
		} else {
			memcpy(l4, f + 14 + ihl + 2, 2);
			memcpy(l4 + 2, f + 14 + ihl, 2);
			put16(l4 + 6, 0); /* no UDP checksum */
		}
	}
	send(t, NET_HDR + len);
	return 1;
}

static void hexbyte(struct line *l, u8 v)
{
	char s[3] = { "0123456789abcdef"[v >> 4], "0123456789abcdef"[v & 15], 0 };
	l_str(l, s);
}

int main(void)
{
	const char *ips = arg_str("ip");
	u64 secs = arg_u64("secs", 0), tick = arg_u64("tick_us", 100000), second, next, t0;
	struct line l;
	u32 i, g;
	if (parse_ip(ips ? ips : "10.77.0.2", ip)) {
		con_puts("net error bad ip\n");
		return 2;
	}
	if (virtio_find(&dev, VIRTIO_ID_NET, 0) || virtio_init(&dev, 1ULL << NET_F_MAC, (int)arg_u64("event_idx", 1)) ||
	    virtio_setup_queue(&dev, RXQ, NBUF) || virtio_setup_queue(&dev, TXQ, NBUF))
		return 2;
	rxq = &dev.vq[RXQ];
	txq = &dev.vq[TXQ];
	if (virtio_has(&dev, NET_F_MAC)) {
		do {
			g = vreg_r(&dev, VIRTIO_MMIO_CONFIG_GENERATION);
			for (i = 0; i < 6; i++)
				mac[i] = vcfg_r8(&dev, i);
		} while (g != vreg_r(&dev, VIRTIO_MMIO_CONFIG_GENERATION));
	} else {
		static const u8 def[6] = { 0x52, 0x54, 0x00, 0x4d, 0x00, 0x02 };
		memcpy(mac, def, 6);
	}
	for (i = 0; i < rxq->num && i < NBUF; i++)
		post_rx(rxbuf[i]);
	for (i = 0; i < txq->num && i < NBUF; i++)
		tx_free[ntx_free++] = txbuf[i];
	virtio_driver_ok(&dev);
	vq_kick(rxq);
	if (tick)
		sys_timer(tick);

	l_init(&l);
	l_str(&l, "net start mac ");
	for (i = 0; i < 6; i++) {
		if (i)
			l_str(&l, ":");
		hexbyte(&l, mac[i]);
	}
	l_str(&l, " ip ");
	for (i = 0; i < 4; i++) {
		if (i)
			l_str(&l, ".");
		l_u64(&l, ip[i]);
	}
	l_emit(&l);

	second = us_to_tsc(1000000);
	t0 = rdtsc();
	next = t0 + second;
	for (;;) {
		u64 seen = virtio_ack(&dev), now;
		int work = 0;
		u32 len;
		u8 *b;
		while ((b = vq_pop(txq, NULL)))
			tx_free[ntx_free++] = b;
		while ((b = vq_pop(rxq, &len))) {
			rx++;
			if (len > NET_HDR)
				handle(b + NET_HDR, len - NET_HDR);
			post_rx(b);
			work = 1;
		}
		vq_kick(txq);
		vq_kick(rxq);
		now = rdtsc();
		if ((s64)(now - next) >= 0) {
			l_str(&l, "net stats rx ");
			l_u64(&l, rx);
			l_str(&l, " tx ");
			l_u64(&l, tx);
			l_str(&l, " drops ");
			l_u64(&l, drops);
			l_emit(&l);
			virtio_check_status(&dev);
			next += second;
			if ((s64)(now - next) > 0)
				next = now + second;
			if (secs && now - t0 >= secs * second)
				return 0;
		}
		if (work)
			continue;
		/* tx completions only matter when no tx buffer is left; rx always wakes us. */
		if (ntx_free)
			vq_quiet(txq);
		if (vq_arm(rxq) || (!ntx_free && vq_arm(txq)))
			continue;
		virtio_sleep(&dev, seen);
	}
}
