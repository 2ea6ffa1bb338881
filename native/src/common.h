/* Shared helpers for the swapvisor native addon: argument parsing and errno errors.
 * This addon is the only syscall layer of swapvisor. It holds no policy: every decision
 * (what to map, which ioctl, when to run a vCPU) is made by the TypeScript above it. */
#pragma once
#include <node_api.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define NAPI_CALL(env, call)                                   \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      napi_throw_error((env), "ERR_NATIVE", #call " failed");  \
      return NULL;                                             \
    }                                                          \
  } while (0)

/* Throws an Error carrying .syscall, .errno and .code (e.g. "ENOENT"). Returns NULL. */
napi_value throw_errno(napi_env env, const char *syscall, int err);
napi_value throw_type(napi_env env, const char *msg);

bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
bool arg_i32(napi_env env, napi_value v, int32_t *out);
bool arg_i64(napi_env env, napi_value v, int64_t *out);  /* number or bigint */
bool arg_u64(napi_env env, napi_value v, uint64_t *out); /* number or bigint */
/* A Uint8Array/Buffer/ArrayBuffer: its data pointer and length. */
bool arg_bytes(napi_env env, napi_value v, void **data, size_t *len);
bool arg_string(napi_env env, napi_value v, char *buf, size_t size);

napi_value make_i32(napi_env env, int32_t v);
napi_value make_i64(napi_env env, int64_t v);
napi_value make_u64_bigint(napi_env env, uint64_t v);
napi_value make_undefined(napi_env env);

void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb);

/* A syscall run on a libuv pool thread: `run` returns 0 or an errno; `done(errno)` is then called on
 * the main thread. `keep` (the syscall's buffer) stays referenced, so alive, until then. */
struct async_call {
  napi_async_work work;
  napi_ref keep_ref;
  napi_ref callback_ref;
  int (*run)(struct async_call *);
  int err;
  int fd;
  unsigned long req;
  void *addr;
  size_t len;
};
napi_value queue_async_call(napi_env env, struct async_call *c, const char *name, napi_value keep, napi_value done);
/* Runs fn(c) with the calling (pool) thread at `nice`, then puts its nice back where permitted. */
int run_at_nice(int nice, int (*fn)(struct async_call *), struct async_call *c);
/* Teardown on a pool thread (unmapping guest RAM, destroying a VM: 10-30 ms of kernel time each here)
 * runs at this nice: it must neither block the main thread nor hold a CPU a vCPU thread wants. */
#define TEARDOWN_NICE 19

void init_fd(napi_env env, napi_value exports);
void init_mem(napi_env env, napi_value exports);
void init_sock(napi_env env, napi_value exports);
void init_vcpu_thread(napi_env env, napi_value exports);
void init_watch(napi_env env, napi_value exports);
void init_checksum(napi_env env, napi_value exports);
void init_pio_queue(napi_env env, napi_value exports);
void init_file(napi_env env, napi_value exports);
