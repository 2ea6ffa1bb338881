/* Crash-safe file replacement in one call on a pool thread: write a temp file next to the target,
 * fsync it, rename it over the target, fsync the directory. Done as separate fs calls from
 * JavaScript it took seven pool round trips, each waiting for a turn of a busy event loop. */
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One allocation: async_call_complete frees it through `c`, its first member. */
struct replace_call {
  struct async_call c;
  char path[PATH_MAX];
  char tmp[PATH_MAX];
  char dir[PATH_MAX];
  mode_t mode;
};

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int replace_run(struct async_call *c) {
  struct replace_call *j = (struct replace_call *)c;
  int fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, j->mode);
  if (fd < 0) return errno;
  int err = write_all(fd, c->addr, c->len);
  if (!err && fsync(fd) < 0) err = errno;
  if (close(fd) < 0 && !err && errno != EINTR) err = errno;
  if (!err && rename(j->tmp, j->path) < 0) err = errno;
  if (err) {
    unlink(j->tmp);
    return err;
  }
  int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno;
  err = fsync(dfd) < 0 ? errno : 0;
  close(dfd);
  return err;
}

/* replaceFileAsync(path, tmpPath, data: Uint8Array, mode, done(errno)) */
static napi_value js_replace_file_async(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t mode;
  void *data;
  size_t len;
  napi_valuetype t;
  struct replace_call *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "calloc", ENOMEM);
  if (!get_args(env, info, 5, argv) || !arg_string(env, argv[0], j->path, sizeof j->path) ||
      !arg_string(env, argv[1], j->tmp, sizeof j->tmp) || !arg_bytes(env, argv[2], &data, &len) ||
      !arg_i32(env, argv[3], &mode) || napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function) {
    free(j);
    return throw_type(env, "replaceFileAsync(path, tmpPath, data: Uint8Array, mode, done: function)");
  }
  char copy[PATH_MAX];
  memcpy(copy, j->path, sizeof copy);
  snprintf(j->dir, sizeof j->dir, "%s", dirname(copy));
  j->mode = (mode_t)mode;
  struct async_call *c = &j->c;
  c->run = replace_run;
  c->addr = data;
  c->len = len;
  /* INVARIANT: the reference keeps `data` alive until the write has returned. */
  return queue_async_call(env, c, "replaceFile", argv[2], argv[4]);
}

void init_file(napi_env env, napi_value exports) {
  export_fn(env, exports, "replaceFileAsync", js_replace_file_async);
}
