/* Entry point of the native addon and the argument/error helpers every file shares. */
#include "common.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

napi_value throw_errno(napi_env env, const char *syscall, int err) {
  const char *name = strerrorname_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, strerror(err), name ? name : "E?");
  napi_value m, e, code, sys, no;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_create_int32(env, err, &no);
  napi_set_named_property(env, e, "code", code);
  napi_set_named_property(env, e, "syscall", sys);
  napi_set_named_property(env, e, "errno", no);
  napi_throw(env, e);
  return NULL;
}

napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  for (size_t i = argc; i < want; i++) napi_get_undefined(env, &argv[i]);
  return true;
}

bool arg_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

bool arg_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

bool arg_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
  }
  int64_t s;
  if (napi_get_value_int64(env, v, &s) != napi_ok) return false;
  *out = (uint64_t)s;
  return true;
}

bool arg_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset) != napi_ok) return false;
    if (type != napi_uint8_array && type != napi_uint8_clamped_array && type != napi_int8_array) return false;
    *len = length;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t offset;
    return napi_get_dataview_info(env, v, len, data, &ab, &offset) == napi_ok;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  }
  return false;
}

bool arg_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, size, &n) == napi_ok && n < size - 1;
}

napi_value make_i32(napi_env env, int32_t v) { napi_value r; napi_create_int32(env, v, &r); return r; }
napi_value make_i64(napi_env env, int64_t v) { napi_value r; napi_create_int64(env, v, &r); return r; }
napi_value make_u64_bigint(napi_env env, uint64_t v) { napi_value r; napi_create_bigint_uint64(env, v, &r); return r; }
napi_value make_undefined(napi_env env) { napi_value r; napi_get_undefined(env, &r); return r; }

void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static void async_call_execute(napi_env env, void *data) {
  struct async_call *c = data;
  c->err = c->run(c);
}

static void async_call_complete(napi_env env, napi_status status, void *data) {
  struct async_call *c = data;
  napi_value cb, undef, argv[1];
  napi_get_reference_value(env, c->callback_ref, &cb);
  napi_get_undefined(env, &undef);
  argv[0] = make_i32(env, status == napi_ok ? c->err : ECANCELED);
  napi_delete_reference(env, c->callback_ref);
  napi_delete_reference(env, c->keep_ref);
  napi_delete_async_work(env, c->work);
  free(c);
  napi_call_function(env, undef, cb, 1, argv, NULL);
}

int run_at_nice(int nice, int (*fn)(struct async_call *), struct async_call *c) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  errno = 0;
  int before = getpriority(PRIO_PROCESS, (id_t)tid);
  bool lowered = errno == 0 && before < nice && setpriority(PRIO_PROCESS, (id_t)tid, nice) == 0;
  int err = fn(c);
  if (lowered) setpriority(PRIO_PROCESS, (id_t)tid, before); /* root may raise it back; others keep it */
  return err;
}

/* Takes ownership of `c` (calloc'ed by the caller, `run` and its arguments filled in). */
napi_value queue_async_call(napi_env env, struct async_call *c, const char *name, napi_value keep, napi_value done) {
  napi_create_reference(env, keep, 1, &c->keep_ref);
  napi_create_reference(env, done, 1, &c->callback_ref);
  napi_value resource_name;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(env, NULL, resource_name, async_call_execute, async_call_complete, c, &c->work);
  napi_queue_async_work(env, c->work);
  return make_undefined(env);
}

static napi_value init(napi_env env, napi_value exports) {
  init_fd(env, exports);
  init_mem(env, exports);
  init_sock(env, exports);
  init_vcpu_thread(env, exports);
  init_watch(env, exports);
  init_checksum(env, exports);
  init_pio_queue(env, exports);
  init_file(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
