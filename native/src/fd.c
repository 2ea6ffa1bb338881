/* File descriptors: open/close/read/write, positioned I/O for disk images, ioctl on buffers, eventfd,
 * memfd, tap devices, CPU affinity. */
#include "common.h"
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/fs.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* open(path, flags) -> fd. O_CLOEXEC is always added. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[4096];
  int32_t flags;
  if (!get_args(env, info, 2, argv) || !arg_string(env, argv[0], path, sizeof path) || !arg_i32(env, argv[1], &flags))
    return throw_type(env, "open(path: string, flags: number)");
  int fd = open(path, flags | O_CLOEXEC, 0600); /* mode applies only with O_CREAT */
  if (fd < 0) return throw_errno(env, "open", errno);
  return make_i32(env, fd);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "close(fd: number)");
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return make_undefined(env);
}

/* ioctl(fd, request, arg?) where arg is a byte buffer (passed by pointer), a number/bigint, or absent. */
static napi_value js_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  uint64_t req;
  if (!get_args(env, info, 3, argv) || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &req))
    return throw_type(env, "ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint)");
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  unsigned long arg = 0;
  if (t == napi_number || t == napi_bigint) {
    uint64_t v;
    if (!arg_u64(env, argv[2], &v)) return throw_type(env, "ioctl: bad integer argument");
    arg = (unsigned long)v;
  } else if (t != napi_undefined) {
    void *data;
    size_t len;
    if (!arg_bytes(env, argv[2], &data, &len)) return throw_type(env, "ioctl: argument must be bytes or an integer");
    arg = (unsigned long)data;
  }
  int r;
  do {
    r = ioctl(fd, (unsigned long)req, arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "ioctl", errno);
  return make_i32(env, r);
}

/* ioctlBatch(fds: Int32Array, requests: Uint32Array, buf: Uint8Array, offsets: Uint32Array,
 *            lengths: Uint32Array, results: Int32Array) -> how many succeeded
 * Runs ioctl(fds[i], requests[i], buf + offsets[i]) for each i in order, in one call from
 * JavaScript: a VM's whole state is some twenty ioctls, and a hot swap's pause window pays for each
 * crossing. results[i] gets the return value; at the first failure results[i] = -errno and the batch
 * stops there. Each argument must lie inside `buf` and be at least the size the request encodes. */
static napi_value js_ioctl_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  void *p[6];
  size_t n[6];
  napi_typedarray_type want[6] = { napi_int32_array, napi_uint32_array, napi_uint8_array, napi_uint32_array, napi_uint32_array, napi_int32_array };
  if (!get_args(env, info, 6, argv)) return throw_type(env, "ioctlBatch(fds, requests, buf, offsets, lengths, results)");
  for (int i = 0; i < 6; i++) {
    napi_typedarray_type t;
    bool is;
    if (napi_is_typedarray(env, argv[i], &is) != napi_ok || !is ||
        napi_get_typedarray_info(env, argv[i], &t, &n[i], &p[i], NULL, NULL) != napi_ok || t != want[i])
      return throw_type(env, "ioctlBatch(fds: Int32Array, requests: Uint32Array, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, results: Int32Array)");
  }
  size_t count = n[0];
  if (n[1] != count || n[3] != count || n[4] != count || n[5] != count) return throw_type(env, "ioctlBatch: the five arrays must have the same length");
  const int32_t *fds = p[0];
  const uint32_t *reqs = p[1], *offs = p[3], *lens = p[4];
  int32_t *res = p[5];
  uint8_t *buf = p[2];
  for (size_t i = 0; i < count; i++) {
    if ((size_t)offs[i] + lens[i] > n[2] || _IOC_SIZE(reqs[i]) > lens[i]) return throw_type(env, "ioctlBatch: an argument lies outside buf or is smaller than its request");
  }
  size_t done = 0;
  for (; done < count; done++) {
    int r;
    do {
      r = ioctl(fds[done], (unsigned long)reqs[done], buf + offs[done]);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      res[done] = -errno;
      break;
    }
    res[done] = r;
  }
  return make_i32(env, (int32_t)done);
}

/* ioctlAsync(fd, request, buf, done(errno)): the ioctl on a libuv pool thread, for the few that
 * sleep in the kernel for milliseconds (KVM_SET_USER_MEMORY_REGION waits for an RCU grace period). */
static int ioctl_run(struct async_call *c) {
  int r;
  do { r = ioctl(c->fd, c->req, c->addr); } while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

static napi_value js_ioctl_async(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  uint64_t req;
  void *data;
  size_t len;
  napi_valuetype t;
  if (!get_args(env, info, 4, argv) || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &req) ||
      !arg_bytes(env, argv[2], &data, &len) || napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function)
    return throw_type(env, "ioctlAsync(fd, request, buf: Uint8Array, done: function)");
  struct async_call *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, "calloc", ENOMEM);
  c->run = ioctl_run;
  c->fd = fd;
  c->req = (unsigned long)req;
  c->addr = data;
  /* INVARIANT: the reference keeps the argument buffer alive until the ioctl has returned. */
  return queue_async_call(env, c, "ioctl", argv[2], argv[3]);
}

/* closeAsync(fd, done(errno)): close on a pool thread at TEARDOWN_NICE; closing a VM's last fd
 * destroys the VM (~15 ms of kernel time here for one that ran). */
static int close_syscall(struct async_call *c) {
  return close(c->fd) < 0 && errno != EINTR ? errno : 0;
}

static int close_run(struct async_call *c) {
  return run_at_nice(TEARDOWN_NICE, close_syscall, c);
}

static napi_value js_close_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  napi_valuetype t;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return throw_type(env, "closeAsync(fd, done: function)");
  struct async_call *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, "calloc", ENOMEM);
  c->run = close_run;
  c->fd = fd;
  return queue_async_call(env, c, "close", argv[1], argv[1]);
}

/* read(fd, buf) -> bytes read; -1 on EAGAIN. */
static napi_value js_read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len))
    return throw_type(env, "read(fd: number, buf: Uint8Array)");
  ssize_t n;
  do { n = read(fd, data, len); } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return make_i32(env, -1);
  if (n < 0) return throw_errno(env, "read", errno);
  return make_i64(env, n);
}

/* write(fd, buf) -> bytes written; -1 on EAGAIN. */
static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len))
    return throw_type(env, "write(fd: number, buf: Uint8Array)");
  ssize_t n;
  do { n = write(fd, data, len); } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return make_i32(env, -1);
  if (n < 0) return throw_errno(env, "write", errno);
  return make_i64(env, n);
}

/* pread/pwrite(fd, buf, offset) -> bytes moved (0 at end of file for a read); -1 on EAGAIN. */
static napi_value positioned_io(napi_env env, napi_callback_info info, int is_write) {
  const char *name = is_write ? "pwrite" : "pread";
  napi_value argv[3];
  int32_t fd;
  void *data;
  size_t len;
  int64_t offset;
  if (!get_args(env, info, 3, argv) || !arg_i32(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) ||
      !arg_i64(env, argv[2], &offset))
    return throw_type(env, is_write ? "pwrite(fd: number, buf: Uint8Array, offset: number)" : "pread(fd: number, buf: Uint8Array, offset: number)");
  ssize_t n;
  do { n = is_write ? pwrite(fd, data, len, (off_t)offset) : pread(fd, data, len, (off_t)offset); } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return make_i32(env, -1);
  if (n < 0) return throw_errno(env, name, errno);
  return make_i64(env, n);
}

static napi_value js_pread(napi_env env, napi_callback_info info) { return positioned_io(env, info, 0); }
static napi_value js_pwrite(napi_env env, napi_callback_info info) { return positioned_io(env, info, 1); }

static napi_value js_fdatasync(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "fdatasync(fd: number)");
  int r;
  do { r = fdatasync(fd); } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "fdatasync", errno);
  return make_undefined(env);
}

/* fallocate(fd, mode, offset, len): mode is FALLOC_FL_* as given. */
static napi_value js_fallocate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd, mode;
  int64_t offset, len;
  if (!get_args(env, info, 4, argv) || !arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &mode) ||
      !arg_i64(env, argv[2], &offset) || !arg_i64(env, argv[3], &len))
    return throw_type(env, "fallocate(fd: number, mode: number, offset: number, len: number)");
  int r;
  do { r = fallocate(fd, mode, (off_t)offset, (off_t)len); } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "fallocate", errno);
  return make_undefined(env);
}

/* fstatSize(fd) -> st_size, or for a block device its size in bytes (BLKGETSIZE64). */
static napi_value js_fstat_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &fd)) return throw_type(env, "fstatSize(fd: number)");
  struct stat st;
  if (fstat(fd, &st) < 0) return throw_errno(env, "fstat", errno);
  if (!S_ISBLK(st.st_mode)) return make_i64(env, (int64_t)st.st_size);
  uint64_t bytes;
  if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) return throw_errno(env, "ioctl", errno);
  return make_i64(env, (int64_t)bytes);
}

/* openTap(name, ifrFlags) -> { fd, name }: opens /dev/net/tun (O_RDWR|O_NONBLOCK|O_CLOEXEC) and attaches it
 * with TUNSETIFF to the interface `name` (created if missing; "%d" lets the kernel pick a number).
 * ifrFlags (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR...) are passed through as given. */
static napi_value js_open_tap(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[IFNAMSIZ + 1]; /* one spare byte: arg_string refuses a string that fills the buffer */
  int32_t flags;
  if (!get_args(env, info, 2, argv) || !arg_string(env, argv[0], name, sizeof name) || strlen(name) >= IFNAMSIZ ||
      !arg_i32(env, argv[1], &flags))
    return throw_type(env, "openTap(name: string of at most 15 bytes, flags: number)");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = (short)flags;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ioctl", err);
  }
  napi_value result, chosen;
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  napi_create_object(env, &result);
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &chosen);
  napi_set_named_property(env, result, "fd", make_i32(env, fd));
  napi_set_named_property(env, result, "name", chosen);
  return result;
}

static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t init, flags;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &init) || !arg_i32(env, argv[1], &flags))
    return throw_type(env, "eventfd(initval: number, flags: number)");
  int fd = eventfd((unsigned)init, flags | EFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return make_i32(env, fd);
}

static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[250];
  int32_t flags;
  if (!get_args(env, info, 2, argv) || !arg_string(env, argv[0], name, sizeof name) || !arg_i32(env, argv[1], &flags))
    return throw_type(env, "memfdCreate(name: string, flags: number)");
  int fd = memfd_create(name, (unsigned)flags | MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  return make_i32(env, fd);
}

static napi_value js_ftruncate(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  int64_t size;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_i64(env, argv[1], &size))
    return throw_type(env, "ftruncate(fd: number, size: number)");
  if (ftruncate(fd, size) < 0) return throw_errno(env, "ftruncate", errno);
  return make_undefined(env);
}

/* struct sched_attr (include/uapi/linux/sched/types.h), version 1: 56 bytes. glibc 2.36 has no wrapper. */
struct sv_sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};

/* schedSetFair(tid, nice, sliceNs): SCHED_OTHER at `nice` with a requested time slice (EEVDF, Linux
 * 6.12+: sched_runtime of a fair task; a shorter slice gets an earlier deadline, so the thread runs
 * sooner after it wakes, without a bigger share of the CPU). sliceNs 0 keeps the default slice. */
static napi_value js_sched_set_fair(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t tid, nice;
  int64_t slice;
  if (!get_args(env, info, 3, argv) || !arg_i32(env, argv[0], &tid) || !arg_i32(env, argv[1], &nice) || !arg_i64(env, argv[2], &slice) ||
      nice < -20 || nice > 19 || slice < 0)
    return throw_type(env, "schedSetFair(tid: number, nice: -20..19, sliceNs: >= 0)");
  struct sv_sched_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.sched_policy = 0; /* SCHED_OTHER */
  a.sched_nice = nice;
  a.sched_runtime = (uint64_t)slice;
  if (syscall(SYS_sched_setattr, tid, &a, 0) < 0) return throw_errno(env, "sched_setattr", errno);
  return make_undefined(env);
}

/* schedGetSlice(tid) -> the thread's requested slice in ns (sched_runtime; 0 if it has none). */
static napi_value js_sched_get_slice(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t tid;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &tid)) return throw_type(env, "schedGetSlice(tid: number)");
  struct sv_sched_attr a;
  memset(&a, 0, sizeof a);
  if (syscall(SYS_sched_getattr, tid, &a, sizeof a, 0) < 0) return throw_errno(env, "sched_getattr", errno);
  return make_i64(env, (int64_t)a.sched_runtime);
}

/* schedYield(): sched_yield() for the calling thread; lets a runnable thread of its CPU go first. */
static napi_value js_sched_yield(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  return make_undefined(env);
}

/* sched_setaffinity(tid, cpus: number[]); tid 0 means the calling thread. */
static napi_value js_sched_setaffinity(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t tid;
  bool is_array;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &tid) ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array)
    return throw_type(env, "schedSetaffinity(tid: number, cpus: number[])");
  uint32_t n;
  napi_get_array_length(env, argv[1], &n);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    int32_t cpu;
    napi_get_element(env, argv[1], i, &el);
    if (!arg_i32(env, el, &cpu) || cpu < 0 || cpu >= CPU_SETSIZE) return throw_type(env, "cpu index out of range");
    CPU_SET(cpu, &set);
  }
  if (sched_setaffinity(tid, sizeof set, &set) < 0) return throw_errno(env, "sched_setaffinity", errno);
  return make_undefined(env);
}

static napi_value js_sched_getaffinity(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t tid;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &tid)) return throw_type(env, "schedGetaffinity(tid: number)");
  cpu_set_t set;
  if (sched_getaffinity(tid, sizeof set, &set) < 0) return throw_errno(env, "sched_getaffinity", errno);
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t k = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) napi_set_element(env, arr, k++, make_i32(env, cpu));
  }
  return arr;
}

/* flock(fd, op) -> true, or false when LOCK_NB was given and the lock is held elsewhere. */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, op;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &op))
    return throw_type(env, "flock(fd: number, op: number)");
  int r;
  do { r = flock(fd, op); } while (r < 0 && errno == EINTR);
  napi_value b;
  if (r < 0 && errno == EWOULDBLOCK) { napi_get_boolean(env, false, &b); return b; }
  if (r < 0) return throw_errno(env, "flock", errno);
  napi_get_boolean(env, true, &b);
  return b;
}

static napi_value js_gettid(napi_env env, napi_callback_info info) {
  return make_i32(env, (int32_t)syscall(SYS_gettid));
}

void init_fd(napi_env env, napi_value exports) {
  export_fn(env, exports, "open", js_open);
  export_fn(env, exports, "close", js_close);
  export_fn(env, exports, "closeAsync", js_close_async);
  export_fn(env, exports, "ioctl", js_ioctl);
  export_fn(env, exports, "ioctlBatch", js_ioctl_batch);
  export_fn(env, exports, "ioctlAsync", js_ioctl_async);
  export_fn(env, exports, "read", js_read);
  export_fn(env, exports, "write", js_write);
  export_fn(env, exports, "pread", js_pread);
  export_fn(env, exports, "pwrite", js_pwrite);
  export_fn(env, exports, "fdatasync", js_fdatasync);
  export_fn(env, exports, "fallocate", js_fallocate);
  export_fn(env, exports, "fstatSize", js_fstat_size);
  export_fn(env, exports, "openTap", js_open_tap);
  export_fn(env, exports, "eventfd", js_eventfd);
  export_fn(env, exports, "memfdCreate", js_memfd_create);
  export_fn(env, exports, "ftruncate", js_ftruncate);
  export_fn(env, exports, "schedSetaffinity", js_sched_setaffinity);
  export_fn(env, exports, "schedSetFair", js_sched_set_fair);
  export_fn(env, exports, "schedGetSlice", js_sched_get_slice);
  export_fn(env, exports, "schedYield", js_sched_yield);
  export_fn(env, exports, "schedGetaffinity", js_sched_getaffinity);
  export_fn(env, exports, "gettid", js_gettid);
  export_fn(env, exports, "flock", js_flock);
}
