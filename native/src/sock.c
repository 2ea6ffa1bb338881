/* Unix sockets with file descriptor passing (SCM_RIGHTS): socketpair, sendmsg, recvmsg. */
#include "common.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 64

/* socketpair(type) -> [fd0, fd1], AF_UNIX, close-on-exec. */
static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t type;
  if (!get_args(env, info, 1, argv) || !arg_i32(env, argv[0], &type)) return throw_type(env, "socketpair(type: number)");
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) return throw_errno(env, "socketpair", errno);
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, make_i32(env, sv[0]));
  napi_set_element(env, arr, 1, make_i32(env, sv[1]));
  return arr;
}

/* sendmsg(fd, data, fds: number[]) -> bytes sent; -1 on EAGAIN. Never blocks (MSG_DONTWAIT), whether
 * or not the fd is O_NONBLOCK (a libuv poll on the fd sets that flag on the shared file description):
 * callers that want to wait use waitWritable, with a timeout. */
static napi_value js_sendmsg(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  void *data;
  size_t len;
  bool is_array;
  if (!get_args(env, info, 3, argv) || !arg_i32(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array)
    return throw_type(env, "sendmsg(fd: number, data: Uint8Array, fds: number[])");
  uint32_t nfds;
  napi_get_array_length(env, argv[2], &nfds);
  if (nfds > MAX_FDS) return throw_errno(env, "sendmsg", E2BIG);
  int fds[MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value el;
    napi_get_element(env, argv[2], i, &el);
    if (!arg_i32(env, el, &fds[i])) return throw_type(env, "sendmsg: fds must be numbers");
  }
  struct iovec iov = { .iov_base = data, .iov_len = len };
  union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } ctl;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do { n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return make_i32(env, -1);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  return make_i64(env, n);
}

/* recvmsg(fd, buf) -> { bytes, fds: number[], truncated: boolean }; bytes is -1 on EAGAIN. */
static napi_value js_recvmsg(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len))
    return throw_type(env, "recvmsg(fd: number, buf: Uint8Array)");
  struct iovec iov = { .iov_base = data, .iov_len = len };
  union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } ctl;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
  ssize_t n;
  do { n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0; /* before any N-API call can change errno */
  if (n < 0 && err != EAGAIN) return throw_errno(env, "recvmsg", err);
  napi_value result, fds;
  napi_create_object(env, &result);
  napi_create_array(env, &fds);
  uint32_t k = 0;
  if (n >= 0) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int *p = (int *)CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) napi_set_element(env, fds, k++, make_i32(env, p[i]));
    }
  }
  napi_value truncated;
  napi_get_boolean(env, n >= 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0, &truncated);
  napi_set_named_property(env, result, "bytes", make_i64(env, n < 0 ? -1 : n));
  napi_set_named_property(env, result, "fds", fds);
  napi_set_named_property(env, result, "truncated", truncated);
  return result;
}

/* unixListen(path, backlog) -> fd: a listening AF_UNIX stream socket bound at path. Node serves on
 * the fd; since libuv did not bind it, libuv never unlinks the path when the fd closes, so the
 * socket can be handed to another process and outlive this one. */
static napi_value js_unix_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[108];
  int32_t backlog;
  if (!get_args(env, info, 2, argv) || !arg_string(env, argv[0], path, sizeof path) || !arg_i32(env, argv[1], &backlog))
    return throw_type(env, "unixListen(path: string (at most 107 bytes), backlog: number)");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path, strlen(path)); /* arg_string bounded it to 107 bytes */
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { int e = errno; close(fd); return throw_errno(env, "bind", e); }
  if (listen(fd, backlog) < 0) { int e = errno; close(fd); return throw_errno(env, "listen", e); }
  return make_i32(env, fd);
}

/* waitWritable(fd, timeoutMs) -> true once fd is writable (or has an error or hang-up pending, which
 * the next send reports), false when timeoutMs passes first or a signal interrupts the wait. Blocks
 * the calling thread: the caller bounds the total wait. */
static napi_value js_wait_writable(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, timeout_ms;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &timeout_ms) || timeout_ms < 0)
    return throw_type(env, "waitWritable(fd: number, timeoutMs: number (>= 0))");
  struct pollfd p = { .fd = fd, .events = POLLOUT };
  int r = poll(&p, 1, timeout_ms);
  if (r < 0 && errno == EINTR) r = 0;
  if (r < 0) return throw_errno(env, "poll", errno);
  if (r > 0 && (p.revents & POLLNVAL)) return throw_errno(env, "poll", EBADF);
  napi_value result;
  napi_get_boolean(env, r > 0, &result);
  return result;
}

void init_sock(napi_env env, napi_value exports) {
  export_fn(env, exports, "unixListen", js_unix_listen);
  export_fn(env, exports, "socketpair", js_socketpair);
  export_fn(env, exports, "sendmsg", js_sendmsg);
  export_fn(env, exports, "recvmsg", js_recvmsg);
  export_fn(env, exports, "waitWritable", js_wait_writable);
}

/* fdWatch(fd, onReadable) -> handle: a libuv poll on fd; onReadable() runs on the main thread each
 * time the fd becomes readable. fdUnwatch(handle) stops it. The fd stays open and owned by the caller. */
#include <uv.h>
#include <stdlib.h>

struct fd_watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  bool closing;
};

static void watch_closed(uv_handle_t *h) {
  struct fd_watch *w = h->data;
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  free(w);
}

static void watch_cb(uv_poll_t *p, int status, int events) {
  struct fd_watch *w = p->data;
  if (w->closing) return;
  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  napi_value cb, argv[1];
  napi_get_reference_value(w->env, w->callback, &cb);
  argv[0] = make_i32(w->env, status);
  napi_value result;
  /* napi_make_callback with an async context runs microtasks afterwards and reports a thrown
   * exception as uncaught, like any other callback from the event loop. */
  napi_value global;
  napi_get_global(w->env, &global); /* make_callback needs an object as `this` */
  if (napi_make_callback(w->env, w->async, global, cb, 1, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(w->env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(w->env, &e);
      napi_fatal_exception(w->env, e);
    }
  }
  napi_close_handle_scope(w->env, scope);
}

static napi_value js_fd_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  napi_valuetype t;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return throw_type(env, "fdWatch(fd: number, onReadable: function)");
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  struct fd_watch *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "calloc", ENOMEM);
  w->env = env;
  int err = uv_poll_init(loop, &w->poll, fd);
  if (err) { free(w); return throw_errno(env, "uv_poll_init", -err); }
  w->poll.data = w;
  napi_create_reference(env, argv[1], 1, &w->callback);
  napi_value resource_name;
  napi_create_string_utf8(env, "swapvisor.fdWatch", NAPI_AUTO_LENGTH, &resource_name);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, resource_name, &w->async);
  err = uv_poll_start(&w->poll, UV_READABLE, watch_cb);
  if (err) {
    w->closing = true;
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    return throw_errno(env, "uv_poll_start", -err);
  }
  napi_value handle;
  napi_create_external(env, w, NULL, NULL, &handle);
  return handle;
}

static napi_value js_fd_unwatch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *p = NULL;
  if (!get_args(env, info, 1, argv) || napi_get_value_external(env, argv[0], &p) != napi_ok || !p)
    return throw_type(env, "fdUnwatch(handle)");
  struct fd_watch *w = p;
  if (!w->closing) {
    w->closing = true;
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, watch_closed);
  }
  return make_undefined(env);
}

void init_watch(napi_env env, napi_value exports) {
  export_fn(env, exports, "fdWatch", js_fd_watch);
  export_fn(env, exports, "fdUnwatch", js_fd_unwatch);
}
