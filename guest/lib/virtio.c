/*
 * swapvisor guest kit: virtio-mmio driver core for CPL3 workloads (virtio 1.2, modern interface, split rings).
 * Devices come from the command line (virtio_mmio.device=<size>@<base>:<gsi>, Linux syntax); queue memory is
 * static and page-aligned in the image, which is identity-mapped, so guest virtual == guest physical.
 */
#include "virtio.h"

#define VQ_PAGES (2 * VIRTIO_MAX_QUEUES)
static u8 vq_mem[VQ_PAGES][3][4096] __attribute__((aligned(4096)));
static u32 vq_mem_used;

static void vline(const char *a, u64 v, const char *b, u64 w)
{
	struct line l;
	l_init(&l);
	l_str(&l, "virtio ");
	l_str(&l, a);
	l_u64(&l, v);
	if (b) {
		l_str(&l, b);
		l_u64(&l, w);
	}
	l_emit(&l);
}

u64 vcfg_r64(struct virtio_dev *d, u32 off)
{
	u32 g, lo, hi;
	do {
		g = vreg_r(d, VIRTIO_MMIO_CONFIG_GENERATION);
		lo = vcfg_r32(d, off);
		hi = vcfg_r32(d, off + 4);
	} while (g != vreg_r(d, VIRTIO_MMIO_CONFIG_GENERATION));
	return ((u64)hi << 32) | lo;
}

/* A number with an optional 0x prefix and, if `suffix`, one of K/M/G (binary). Advances *s. */
static int parse_num(const char **s, u64 *out, int suffix)
{
	const char *p = *s;
	u64 v = 0;
	int any = 0, hex = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		hex = 1;
	}
	for (;; p++, any = 1) {
		int dgt;
		if (*p >= '0' && *p <= '9')
			dgt = *p - '0';
		else if (hex && *p >= 'a' && *p <= 'f')
			dgt = *p - 'a' + 10;
		else if (hex && *p >= 'A' && *p <= 'F')
			dgt = *p - 'A' + 10;
		else
			break;
		v = v * (hex ? 16 : 10) + (u64)dgt;
	}
	if (!any)
		return -1;
	if (suffix) {
		if (*p == 'k' || *p == 'K')
			v <<= 10, p++;
		else if (*p == 'm' || *p == 'M')
			v <<= 20, p++;
		else if (*p == 'g' || *p == 'G')
			v <<= 30, p++;
	}
	*s = p;
	*out = v;
	return 0;
}

/* "<size>@<base>:<gsi>[:<id>]" */
static int parse_dev(const char *s, u64 *size, u64 *base, u64 *gsi)
{
	if (parse_num(&s, size, 1) || *s++ != '@' || parse_num(&s, base, 0) || *s++ != ':' || parse_num(&s, gsi, 0))
		return -1;
	return (*s == 0 || *s == ':') ? 0 : -1;
}

int virtio_find(struct virtio_dev *d, u32 device_id, u32 slot)
{
	u64 i, size, base, gsi;
	memset(d, 0, sizeof(*d));
	for (i = 0; i < kinfo.nargs; i++) {
		if (!streq(kinfo.key[i], "virtio_mmio.device") || parse_dev(kinfo.val[i], &size, &base, &gsi))
			continue;
		if (size < 0x100 || base >= (4ULL << 30))
			continue;
		d->base = base;
		if (vreg_r(d, VIRTIO_MMIO_MAGIC) != VIRTIO_MAGIC || vreg_r(d, VIRTIO_MMIO_DEVICE_ID) != device_id)
			continue;
		if (vreg_r(d, VIRTIO_MMIO_VERSION) != 2) {
			vline("legacy device (version ", vreg_r(d, VIRTIO_MMIO_VERSION), ") skipped, type ", device_id);
			continue;
		}
		d->size = size;
		d->gsi = (u32)gsi;
		d->slot = slot;
		d->device_id = device_id;
		if (sys_irq(gsi, VEC_IRQ_BASE + slot) < 0) {
			vline("cannot route gsi ", gsi, NULL, 0);
			return -1;
		}
		return 0;
	}
	d->base = 0;
	vline("no device ", device_id, NULL, 0);
	return -1;
}

static int vfail(struct virtio_dev *d, const char *why)
{
	struct line l;
	vreg_w(d, VIRTIO_MMIO_STATUS, vreg_r(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FAILED);
	l_init(&l);
	l_str(&l, "virtio init failed: ");
	l_str(&l, why);
	l_emit(&l);
	return -1;
}

int virtio_init(struct virtio_dev *d, u64 wanted, int use_event_idx)
{
	u32 st, spins = 0;
	u64 accept;
	vreg_w(d, VIRTIO_MMIO_STATUS, 0); /* reset; the device reports 0 once it is done */
	while (vreg_r(d, VIRTIO_MMIO_STATUS) != 0)
		if (++spins > 1000000)
			return vfail(d, "reset");
	st = VIRTIO_STATUS_ACKNOWLEDGE;
	vreg_w(d, VIRTIO_MMIO_STATUS, st);
	st |= VIRTIO_STATUS_DRIVER;
	vreg_w(d, VIRTIO_MMIO_STATUS, st);

	vreg_w(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	d->dev_features = vreg_r(d, VIRTIO_MMIO_DEVICE_FEATURES);
	vreg_w(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	d->dev_features |= (u64)vreg_r(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	if (!((d->dev_features >> VIRTIO_F_VERSION_1) & 1))
		return vfail(d, "no VIRTIO_F_VERSION_1");
	accept = (1ULL << VIRTIO_F_VERSION_1) | (wanted & d->dev_features);
	if (use_event_idx)
		accept |= d->dev_features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	vreg_w(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vreg_w(d, VIRTIO_MMIO_DRIVER_FEATURES, (u32)accept);
	vreg_w(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vreg_w(d, VIRTIO_MMIO_DRIVER_FEATURES, (u32)(accept >> 32));
	st |= VIRTIO_STATUS_FEATURES_OK;
	vreg_w(d, VIRTIO_MMIO_STATUS, st);
	if (!(vreg_r(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return vfail(d, "FEATURES_OK not accepted");
	d->features = accept;
	d->event_idx = (accept >> VIRTIO_F_RING_EVENT_IDX) & 1;
	d->acked = (u64)-1;
	return 0;
}

int virtio_setup_queue(struct virtio_dev *d, u16 index, u16 max_size)
{
	struct virtq *q;
	u32 max, num, i;
	u64 a;
	if (index >= VIRTIO_MAX_QUEUES || vq_mem_used >= VQ_PAGES)
		return vfail(d, "too many queues");
	vreg_w(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (vreg_r(d, VIRTIO_MMIO_QUEUE_READY))
		return vfail(d, "queue already ready");
	max = vreg_r(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!max)
		return vfail(d, "queue not available");
	if (max > VQ_MAX_SIZE)
		max = VQ_MAX_SIZE;
	if (max_size && max > max_size)
		max = max_size;
	for (num = 1; num * 2 <= max; num *= 2) /* split rings: a power of 2 */
		;
	q = &d->vq[index];
	memset(q, 0, sizeof(*q));
	q->dev = d;
	q->index = index;
	q->num = (u16)num;
	q->desc = (volatile struct virtq_desc *)vq_mem[vq_mem_used][0];
	q->avail = (volatile struct virtq_avail *)vq_mem[vq_mem_used][1];
	q->used = (volatile struct virtq_used *)vq_mem[vq_mem_used][2];
	vq_mem_used++;
	memset((void *)q->desc, 0, 3 * 4096);
	for (i = 0; i < num; i++)
		q->desc[i].next = (u16)(i + 1);
	q->free_head = 0;
	q->num_free = (u16)num;

	vreg_w(d, VIRTIO_MMIO_QUEUE_NUM, num);
	a = (u64)q->desc;
	vreg_w(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (u32)a);
	vreg_w(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (u32)(a >> 32));
	a = (u64)q->avail;
	vreg_w(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (u32)a);
	vreg_w(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (u32)(a >> 32));
	a = (u64)q->used;
	vreg_w(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (u32)a);
	vreg_w(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (u32)(a >> 32));
	vreg_w(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (index >= d->nqueues)
		d->nqueues = index + 1u;
	return 0;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	vreg_w(d, VIRTIO_MMIO_STATUS, vreg_r(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

int virtio_check_status(struct virtio_dev *d)
{
	if (!(vreg_r(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET))
		return 0;
	if (!d->needs_reset)
		vline("needs-reset device ", d->device_id, NULL, 0);
	d->needs_reset = 1;
	return 1;
}

u64 virtio_ack(struct virtio_dev *d)
{
	u64 seen = kinfo.irqs[d->slot];
	u32 st;
	barrier();
	/* No interrupt since the last acknowledgement: nothing to acknowledge (saves two MMIO exits). */
	if (seen == d->acked)
		return seen;
	d->acked = seen;
	st = vreg_r(d, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (st)
		vreg_w(d, VIRTIO_MMIO_INTERRUPT_ACK, st);
	if (st & 2) {
		d->config_changes++;
		virtio_check_status(d);
	}
	return seen;
}

void virtio_sleep(struct virtio_dev *d, u64 seen) { sys_wait_once(&kinfo.irqs[d->slot], seen); }

int vq_add(struct virtq *q, const struct vbuf *b, int nout, int nin, void *token)
{
	int n = nout + nin, k;
	u16 head, i;
	if (n <= 0 || n > q->num_free)
		return -1;
	head = i = q->free_head;
	for (k = 0; k < n; k++) {
		volatile struct virtq_desc *dd = &q->desc[i];
		dd->addr = (u64)b[k].addr;
		dd->len = b[k].len;
		dd->flags = (u16)((k >= nout ? VIRTQ_DESC_F_WRITE : 0) | (k < n - 1 ? VIRTQ_DESC_F_NEXT : 0));
		i = dd->next;
	}
	q->free_head = i;
	q->num_free = (u16)(q->num_free - n);
	q->token[head] = token;
	q->avail->ring[q->avail_idx & (q->num - 1)] = head;
	barrier(); /* descriptors and ring entry before the index (x86 keeps stores in order) */
	q->avail_idx++;
	q->avail->idx = q->avail_idx;
	return head;
}

void vq_kick(struct virtq *q)
{
	u16 old = q->kicked_idx, now = q->avail_idx;
	int need;
	if (old == now)
		return;
	q->kicked_idx = now;
	mfence(); /* avail->idx store before the avail_event / flags load */
	if (q->dev->event_idx) {
		u16 ev = *(volatile u16 *)((u64)q->used + 4 + 8 * (u64)q->num); /* avail_event */
		need = (u16)(now - ev - 1) < (u16)(now - old);
	} else {
		need = !(q->used->flags & VIRTQ_USED_F_NO_NOTIFY);
	}
	if (need) {
		vreg_w(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
		q->kicks++;
	} else {
		q->kicks_skipped++;
	}
}

void *vq_pop(struct virtq *q, u32 *len)
{
	u16 id, i, n = 1;
	void *t;
	if (q->used->idx == q->last_used)
		return NULL;
	barrier(); /* the index before the entry */
	id = (u16)q->used->ring[q->last_used & (q->num - 1)].id;
	if (len)
		*len = q->used->ring[q->last_used & (q->num - 1)].len;
	q->last_used++;
	if (id >= q->num)
		return NULL;
	t = q->token[id];
	for (i = id; q->desc[i].flags & VIRTQ_DESC_F_NEXT; i = q->desc[i].next)
		n++;
	q->desc[i].next = q->free_head;
	q->free_head = id;
	q->num_free = (u16)(q->num_free + n);
	return t;
}

int vq_arm(struct virtq *q)
{
	if (q->dev->event_idx)
		q->avail->ring[q->num] = q->last_used; /* used_event: interrupt once the device passes it */
	else if (q->avail->flags)
		q->avail->flags = 0;
	mfence(); /* the used_event store before the used->idx load */
	return q->used->idx != q->last_used;
}

void vq_quiet(struct virtq *q)
{
	if (q->dev->event_idx)
		q->avail->ring[q->num] = (u16)(q->last_used + 0x7fff); /* out of reach: no interrupt */
	else
		q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
}
