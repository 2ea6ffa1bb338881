/* swapvisor guest kit: user-mode virtio-mmio (virtio 1.2, modern only) driver core with split virtqueues. */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

/* virtio-mmio registers (virtio 1.2 §4.2.2), all 32-bit. */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MAGIC 0x74726976 /* "virt" */

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Device types (§5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

/* Transport feature bits (§6). */
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

#define VQ_MAX_SIZE 256 /* one 4 KiB page of descriptors */
#define VIRTIO_MAX_QUEUES 4

struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};
struct virtq_avail {
	u16 flags;
	u16 idx;
	u16 ring[]; /* num entries, then used_event */
};
struct virtq_used_elem {
	u32 id;
	u32 len;
};
struct virtq_used {
	u16 flags;
	u16 idx;
	struct virtq_used_elem ring[]; /* num entries, then avail_event (u16) */
};

struct virtio_dev;

struct virtq {
	struct virtio_dev *dev;
	u16 index;
	u16 num;
	u16 free_head; /* free descriptors are chained through .next */
	u16 num_free;
	u16 avail_idx; /* driver's copy of avail->idx */
	u16 kicked_idx; /* avail_idx at the last notification decision */
	u16 last_used; /* next used->idx entry to consume */
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	void *token[VQ_MAX_SIZE]; /* per head descriptor */
	u64 kicks;                /* QueueNotify writes */
	u64 kicks_skipped;        /* notifications suppressed by the device */
};

struct virtio_dev {
	u64 base; /* MMIO base (identity-mapped) */
	u64 size;
	u32 gsi;
	u32 slot;        /* vector VEC_IRQ_BASE + slot, counter kinfo.irqs[slot] */
	u32 device_id;
	u32 nqueues;
	u64 dev_features;
	u64 features;    /* negotiated */
	int event_idx;   /* VIRTIO_F_RING_EVENT_IDX negotiated */
	int needs_reset; /* DEVICE_NEEDS_RESET seen (reported once) */
	u64 config_changes;
	u64 acked;       /* kinfo.irqs[slot] at the last InterruptACK */
	struct virtq vq[VIRTIO_MAX_QUEUES];
};

/* One buffer of a descriptor chain. */
struct vbuf {
	void *addr;
	u32 len;
};

static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void mfence(void) { __asm__ volatile("mfence" ::: "memory"); }

static inline u32 vreg_r(struct virtio_dev *d, u32 off) { return *(volatile u32 *)(d->base + off); }
static inline void vreg_w(struct virtio_dev *d, u32 off, u32 v) { *(volatile u32 *)(d->base + off) = v; }
static inline u8 vcfg_r8(struct virtio_dev *d, u32 off) { return *(volatile u8 *)(d->base + VIRTIO_MMIO_CONFIG + off); }
static inline u16 vcfg_r16(struct virtio_dev *d, u32 off)
{
	return *(volatile u16 *)(d->base + VIRTIO_MMIO_CONFIG + off);
}
static inline u32 vcfg_r32(struct virtio_dev *d, u32 off)
{
	return *(volatile u32 *)(d->base + VIRTIO_MMIO_CONFIG + off);
}
u64 vcfg_r64(struct virtio_dev *d, u32 off); /* two 32-bit reads under ConfigGeneration */

/*
 * Finds the first device of type device_id among the command line's virtio_mmio.device=<size>@<base>:<gsi>
 * arguments (magic and version 2 checked) and claims interrupt slot `slot`. Returns 0, or -1 (and prints
 * "virtio: no device <id>") if there is none.
 */
int virtio_find(struct virtio_dev *d, u32 device_id, u32 slot);

/*
 * Reset, ACKNOWLEDGE, DRIVER, features: VERSION_1 | (wanted & offered) | EVENT_IDX if offered and
 * use_event_idx; FEATURES_OK (checked). Returns 0 or -1 (status FAILED set, a line printed).
 * Then call virtio_setup_queue() for each queue and virtio_driver_ok().
 */
int virtio_init(struct virtio_dev *d, u64 wanted, int use_event_idx);
int virtio_setup_queue(struct virtio_dev *d, u16 index, u16 max_size);
void virtio_driver_ok(struct virtio_dev *d);
static inline int virtio_has(struct virtio_dev *d, int bit) { return (d->features >> bit) & 1; }

/*
 * Interrupt protocol, safe with an edge-triggered IOAPIC entry on a level line (QEMU) and with irqfd edges:
 *   seen = virtio_ack(d);      counter first, then InterruptACK of InterruptStatus
 *   ... consume used rings (vq_pop), then vq_arm() each queue ...
 *   if nothing to do: virtio_sleep(d, seen);
 * virtio_ack also checks DEVICE_NEEDS_RESET on configuration-change interrupts (prints "virtio needs-reset").
 */
u64 virtio_ack(struct virtio_dev *d);
void virtio_sleep(struct virtio_dev *d, u64 seen); /* returns on the device's interrupt or any other one */
int virtio_check_status(struct virtio_dev *d);   /* 1 if DEVICE_NEEDS_RESET is set (reported once) */

/* Adds a chain: nout device-readable buffers then nin device-writable ones. Returns the head, or -1 if there
 * are not enough free descriptors. The entry is published (avail->idx) at once; vq_kick notifies. */
int vq_add(struct virtq *q, const struct vbuf *b, int nout, int nin, void *token);
void vq_kick(struct virtq *q);
/* Next used chain (its descriptors are freed): returns its token and stores the written length, or NULL. */
void *vq_pop(struct virtq *q, u32 *len);
/* Asks for an interrupt on the next used entry, then re-checks: returns 1 if entries are already pending. */
int vq_arm(struct virtq *q);
/* Asks for no interrupts for now (the driver polls this queue when it wakes for other reasons). */
void vq_quiet(struct virtq *q);
static inline int vq_pending(struct virtq *q)
{
	barrier();
	return q->used->idx != q->last_used;
}

#endif
