/* mmap/munmap as zero-copy ArrayBuffers. A mapping is released exactly once: by an explicit
 * munmap (which first detaches the ArrayBuffer so no JS view can reach unmapped memory) or,
 * failing that, by the ArrayBuffer's finalizer. */
#include "common.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_VIEW_BYTES (4ULL << 30)

struct mapping {
  void *addr;
  size_t len;
  bool unmapped;
};

static void finalize_mapping(napi_env env, void *data, void *hint) {
  struct mapping *m = hint;
  if (!m->unmapped) munmap(m->addr, m->len);
  m->unmapped = true;
  free(m);
}

/* mmap(fd, length, prot, flags, offset) -> { buffer: ArrayBuffer, address: bigint } */
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd, prot, flags;
  int64_t len, off;
  if (!get_args(env, info, 5, argv) || !arg_i32(env, argv[0], &fd) || !arg_i64(env, argv[1], &len) ||
      !arg_i32(env, argv[2], &prot) || !arg_i32(env, argv[3], &flags) || !arg_i64(env, argv[4], &off))
    return throw_type(env, "mmap(fd, length, prot, flags, offset)");
  if (len <= 0 || (uint64_t)len > MAX_VIEW_BYTES) return throw_errno(env, "mmap", EINVAL);
  void *addr = mmap(NULL, (size_t)len, prot, flags, fd, off);
  if (addr == MAP_FAILED) return throw_errno(env, "mmap", errno);
  struct mapping *m = calloc(1, sizeof *m);
  if (!m) { munmap(addr, (size_t)len); return throw_errno(env, "mmap", ENOMEM); }
  m->addr = addr;
  m->len = (size_t)len;
  napi_value ab, result;
  if (napi_create_external_arraybuffer(env, addr, (size_t)len, finalize_mapping, m, &ab) != napi_ok) {
    munmap(addr, (size_t)len);
    free(m);
    return throw_errno(env, "mmap", ENOMEM);
  }
  /* The mapping record rides on the ArrayBuffer so munmap can find it; the finalizer frees it. */
  napi_wrap(env, ab, m, NULL, NULL, NULL);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "buffer", ab);
  napi_set_named_property(env, result, "address", make_u64_bigint(env, (uint64_t)(uintptr_t)addr));
  return result;
}

/* munmap(buffer): detach the ArrayBuffer, then unmap. Views over it become length 0. */
static napi_value js_munmap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool is;
  if (!get_args(env, info, 1, argv) || napi_is_arraybuffer(env, argv[0], &is) != napi_ok || !is)
    return throw_type(env, "munmap(buffer: ArrayBuffer from mmap)");
  bool detached;
  if (napi_is_detached_arraybuffer(env, argv[0], &detached) == napi_ok && detached) return make_undefined(env);
  struct mapping *m = NULL;
  if (napi_unwrap(env, argv[0], (void **)&m) != napi_ok || m == NULL || m->unmapped)
    return throw_type(env, "munmap: buffer was not created by mmap");
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) return throw_type(env, "munmap: buffer cannot be detached");
  /* INVARIANT: after the detach no JS view can reach [addr, addr+len), so unmapping is safe.
   * The finalizer still owns the record and skips the munmap. */
  m->unmapped = true;
  if (munmap(m->addr, m->len) < 0) return throw_errno(env, "munmap", errno);
  return make_undefined(env);
}

/* madvise(buffer, offset, length, advice) */
static napi_value js_madvise(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data;
  size_t len;
  int64_t off, n;
  int32_t advice;
  if (!get_args(env, info, 4, argv) || !arg_bytes(env, argv[0], &data, &len) || !arg_i64(env, argv[1], &off) ||
      !arg_i64(env, argv[2], &n) || !arg_i32(env, argv[3], &advice))
    return throw_type(env, "madvise(buffer, offset, length, advice)");
  if (off < 0 || n < 0 || (size_t)(off + n) > len) return throw_errno(env, "madvise", EINVAL);
  if (madvise((char *)data + off, (size_t)n, advice) < 0) return throw_errno(env, "madvise", errno);
  return make_undefined(env);
}

/* populateAsync(buffer, offset, length, done(errno)): madvise(MADV_POPULATE_WRITE) on a libuv
 * pool thread, so pre-faulting guest RAM overlaps with the guest running. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The pool thread runs each chunk at this nice, so vCPU threads (nice 0) that wake meanwhile run first:
 * pre-faulting is background work. Measured before: guests waited 1-1.5 ms behind a 1 MiB chunk. */
#define POPULATE_NICE 10

static int populate_syscall(struct async_call *c) {
  return madvise(c->addr, c->len, MADV_POPULATE_WRITE) < 0 ? errno : 0;
}

static int populate_run(struct async_call *c) {
  return run_at_nice(POPULATE_NICE, populate_syscall, c);
}

/* munmapAsync(buffer, done(errno)): detach the ArrayBuffer now, unmap on a pool thread at
 * TEARDOWN_NICE (unmapping 64 MiB of faulted-in guest RAM takes ~15 ms of kernel time here). */
static int munmap_syscall(struct async_call *c) {
  return munmap(c->addr, c->len) < 0 ? errno : 0;
}

static int munmap_run(struct async_call *c) {
  return run_at_nice(TEARDOWN_NICE, munmap_syscall, c);
}

static napi_value js_munmap_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_valuetype t;
  if (!get_args(env, info, 2, argv) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return throw_type(env, "munmapAsync(buffer: ArrayBuffer, done)");
  struct mapping *m = NULL;
  if (napi_unwrap(env, argv[0], (void **)&m) != napi_ok || m == NULL || m->unmapped)
    return throw_type(env, "munmapAsync: buffer was not created by mmap, or is unmapped");
  struct async_call *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, "calloc", ENOMEM);
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) { free(c); return throw_type(env, "munmapAsync: buffer cannot be detached"); }
  /* INVARIANT: detached, so no JS view reaches the range; the record is marked so the finalizer
   * skips it, and the range itself travels in `c`. */
  m->unmapped = true;
  c->run = munmap_run;
  c->addr = m->addr;
  c->len = m->len;
  return queue_async_call(env, c, "munmap", argv[0], argv[1]);
}

static napi_value js_populate_async(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data;
  size_t len;
  int64_t off, n;
  napi_valuetype t;
  bool is_ab;
  if (!get_args(env, info, 4, argv) || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab ||
      !arg_bytes(env, argv[0], &data, &len) || !arg_i64(env, argv[1], &off) || !arg_i64(env, argv[2], &n) ||
      napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function)
    return throw_type(env, "populateAsync(buffer: ArrayBuffer, offset, length, done)");
  if (off < 0 || n < 0 || (uint64_t)off + (uint64_t)n > len) return throw_errno(env, "madvise", EINVAL);
  struct async_call *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, "calloc", ENOMEM);
  c->run = populate_run;
  c->addr = (char *)data + off;
  c->len = (size_t)n;
  /* INVARIANT: the reference keeps the ArrayBuffer (and so the mapping) alive until completion;
   * munmap detaches it, so callers must not munmap while a populate is in flight. */
  return queue_async_call(env, c, "populate", argv[0], argv[3]);
}

void init_mem(napi_env env, napi_value exports) {
  export_fn(env, exports, "populateAsync", js_populate_async);
  export_fn(env, exports, "mmap", js_mmap);
  export_fn(env, exports, "munmap", js_munmap);
  export_fn(env, exports, "munmapAsync", js_munmap_async);
  export_fn(env, exports, "madvise", js_madvise);
}
