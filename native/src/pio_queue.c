/* A VM's console output queue: the bytes the guest wrote to one port (the UART data register),
 * behind KVM's coalesced PIO ring.
 *
 * KVM queues writes to a registered port in a one-page ring (170 entries) without leaving KVM_RUN.
 * When the ring is full the next write exits to userspace, and so far that exit waited for the
 * JavaScript thread, which may be busy for milliseconds (a fork, an fsync, a hot swap's pause
 * window of another VM). Here the vCPU thread itself moves the ring into this larger queue and
 * appends the exiting write, so a guest that only prints never waits for the JavaScript thread.
 * The JavaScript thread takes everything, in order, whenever it drains the console.
 *
 * INVARIANT: the ring page stays mapped until pioQueueClose (Machine.release closes the queue
 * before it closes the vCPU fd whose mapping holds the page).
 *
 * INVARIANT: the only zone registered in the VM's ring is 1 byte wide at `port`, with pio set, so
 * every entry is a 1-byte write to `port`. An entry that is not is skipped and counted.
 * Reference: Documentation/virt/kvm/api.rst, KVM_REGISTER_COALESCED_MMIO. */
#include "common.h"
#include "pio_queue.h"
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RING_PAGE 4096u
#define RING_MAX ((RING_PAGE - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))

struct pio_queue {
  pthread_mutex_t mu;
  struct kvm_coalesced_mmio_ring *ring;
  uint16_t port;
  uint8_t *buf;
  uint32_t cap, head, len; /* a circular byte queue */
  uint64_t skipped;
  int32_t *queued; /* len, published for JavaScript: it skips pioQueueTake while this and the ring are empty */
  napi_ref ring_ref, queued_ref;
};

/* Caller holds q->mu. */
static void publish(struct pio_queue *q) { __atomic_store_n(q->queued, (int32_t)q->len, __ATOMIC_RELEASE); }

/* Moves ring entries into the queue while there is room. Caller holds q->mu. True if the ring is empty. */
static bool drain_ring(struct pio_queue *q) {
  struct kvm_coalesced_mmio_ring *r = q->ring;
  uint32_t first = __atomic_load_n(&r->first, __ATOMIC_RELAXED);
  uint32_t last = __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
  while (first != last) {
    if (first >= RING_MAX || last >= RING_MAX) break; /* the kernel keeps both < RING_MAX */
    if (q->len == q->cap) break;
    struct kvm_coalesced_mmio *e = &r->coalesced_mmio[first];
    if (e->pio == 1 && e->phys_addr == q->port && e->len == 1) {
      q->buf[(q->head + q->len) % q->cap] = e->data[0];
      q->len++;
    } else {
      q->skipped++;
    }
    first = (first + 1) % RING_MAX;
  }
  __atomic_store_n(&r->first, first, __ATOMIC_RELEASE);
  return first == last;
}

bool pio_queue_push(struct pio_queue *q, uint16_t port, const uint8_t *data, uint32_t n) {
  if (port != q->port) return false;
  pthread_mutex_lock(&q->mu);
  bool ok = q->ring && drain_ring(q) && q->cap - q->len >= n;
  if (ok) {
    for (uint32_t i = 0; i < n; i++) q->buf[(q->head + q->len + i) % q->cap] = data[i];
    q->len += n;
  }
  publish(q);
  pthread_mutex_unlock(&q->mu);
  return ok;
}

static void finalize_queue(napi_env env, void *data, void *hint) {
  struct pio_queue *q = data;
  napi_delete_reference(env, q->ring_ref);
  napi_delete_reference(env, q->queued_ref);
  pthread_mutex_destroy(&q->mu);
  free(q->buf);
  free(q);
}

struct pio_queue *pio_queue_from(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* pioQueueCreate(ringPage: Uint8Array (the VM's coalesced ring page), port, capacity, queued: Int32Array(1))
 * -> handle. queued[0] always holds the number of bytes in the native queue (not counting the ring). */
static napi_value js_create(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *page, *queued;
  size_t page_len, queued_len;
  int32_t port, cap;
  napi_typedarray_type qt;
  if (!get_args(env, info, 4, argv) || !arg_bytes(env, argv[0], &page, &page_len) || !arg_i32(env, argv[1], &port) ||
      !arg_i32(env, argv[2], &cap) || napi_get_typedarray_info(env, argv[3], &qt, &queued_len, &queued, NULL, NULL) != napi_ok ||
      qt != napi_int32_array || queued_len < 1 || page_len < RING_PAGE || ((uintptr_t)page & 7) || port < 0 || port > 0xffff || cap < 1)
    return throw_type(env, "pioQueueCreate(ringPage: Uint8Array of 4096 bytes, 8-aligned, port: 0..65535, capacity: >= 1, queued: Int32Array)");
  struct pio_queue *q = calloc(1, sizeof *q);
  uint8_t *buf = malloc((size_t)cap);
  if (!q || !buf) {
    free(q);
    free(buf);
    return throw_errno(env, "malloc", ENOMEM);
  }
  pthread_mutex_init(&q->mu, NULL);
  q->ring = page;
  q->port = (uint16_t)port;
  q->buf = buf;
  q->cap = (uint32_t)cap;
  q->queued = queued;
  *q->queued = 0;
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &q->ring_ref));
  NAPI_CALL(env, napi_create_reference(env, argv[3], 1, &q->queued_ref));
  napi_value handle;
  NAPI_CALL(env, napi_create_external(env, q, finalize_queue, NULL, &handle));
  return handle;
}

/* pioQueueTake(handle) -> Uint8Array of every byte written so far, oldest first (maybe empty). */
static napi_value js_take(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct pio_queue *q;
  if (!get_args(env, info, 1, argv) || !(q = pio_queue_from(env, argv[0]))) return throw_type(env, "pioQueueTake(handle)");
  pthread_mutex_lock(&q->mu);
  if (!q->ring) { /* closed: the ring page is gone; what was queued before the close was taken then */
    pthread_mutex_unlock(&q->mu);
    napi_value empty;
    NAPI_CALL(env, napi_create_buffer(env, 0, NULL, &empty));
    return empty;
  }
  /* The ring can hold more than the free room; take it in rounds until it is empty. */
  uint32_t last = __atomic_load_n(&q->ring->last, __ATOMIC_ACQUIRE);
  uint32_t first = __atomic_load_n(&q->ring->first, __ATOMIC_RELAXED);
  uint32_t in_ring = first < RING_MAX && last < RING_MAX ? (last + RING_MAX - first) % RING_MAX : 0;
  size_t total = q->len + in_ring;
  napi_value out;
  void *dst = NULL;
  if (napi_create_buffer(env, total, &dst, &out) != napi_ok) {
    pthread_mutex_unlock(&q->mu);
    return throw_errno(env, "napi_create_buffer", ENOMEM);
  }
  size_t n = 0;
  for (;;) {
    while (q->len > 0 && n < total) {
      ((uint8_t *)dst)[n++] = q->buf[q->head];
      q->head = (q->head + 1) % q->cap;
      q->len--;
    }
    if (n == total || (drain_ring(q) && q->len == 0)) break;
  }
  publish(q);
  pthread_mutex_unlock(&q->mu);
  if (n == total) return out;
  napi_value sliced, ab; /* entries skipped as malformed: hand back what there was */
  size_t offset;
  NAPI_CALL(env, napi_get_typedarray_info(env, out, NULL, NULL, NULL, &ab, &offset));
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint8_array, n, ab, offset, &sliced));
  return sliced;
}

/* pioQueueClose(handle): forgets the ring page, which is about to be unmapped (its vCPU fd
 * closes). Take what is queued first; afterwards take returns nothing and pushes fail. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct pio_queue *q;
  if (!get_args(env, info, 1, argv) || !(q = pio_queue_from(env, argv[0]))) return throw_type(env, "pioQueueClose(handle)");
  pthread_mutex_lock(&q->mu);
  q->ring = NULL;
  q->len = 0;
  publish(q);
  pthread_mutex_unlock(&q->mu);
  return make_undefined(env);
}

/* pioQueueStats(handle) -> [queued bytes, skipped entries] */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  struct pio_queue *q;
  if (!get_args(env, info, 1, argv) || !(q = pio_queue_from(env, argv[0]))) return throw_type(env, "pioQueueStats(handle)");
  pthread_mutex_lock(&q->mu);
  int64_t len = q->len, skipped = (int64_t)q->skipped;
  pthread_mutex_unlock(&q->mu);
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, make_i64(env, len));
  napi_set_element(env, arr, 1, make_i64(env, skipped));
  return arr;
}

void init_pio_queue(napi_env env, napi_value exports) {
  export_fn(env, exports, "pioQueueCreate", js_create);
  export_fn(env, exports, "pioQueueTake", js_take);
  export_fn(env, exports, "pioQueueStats", js_stats);
  export_fn(env, exports, "pioQueueClose", js_close);
}
