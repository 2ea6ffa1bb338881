/* One native thread per vCPU, blocking in KVM_RUN. The thread runs KVM_RUN once each time
 * JavaScript asks and reports the result back on the main thread; it decides nothing itself.
 *
 * Kicking: the kick signal is blocked in the vCPU thread at all times except inside KVM_RUN
 * (KVM_SET_SIGNAL_MASK), so a kick either interrupts a running KVM_RUN or stays pending and
 * makes the next KVM_RUN return EINTR at once. A pending kick is consumed with sigtimedwait
 * after each EINTR. Callers pair a kick with kvm_run.immediate_exit for a race-free pause. */
#include "common.h"
#include "pio_queue.h"
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { CMD_NONE = 0, CMD_RUN = 1, CMD_QUIT = 2 };

struct vcpu_thread {
  int vcpu_fd;
  pthread_t thread;
  pid_t tid;
  int setup_errno;
  bool started;
  bool joined;
  int cmd;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  napi_threadsafe_function tsfn;
  /* Fast path: 1-byte IN from fast_port answered here with *fast_value (when >= 0), without a round
   * trip to the JS thread. Set once, before the first run; the references keep both buffers alive. */
  struct kvm_run *run;
  int fast_port;
  int32_t *fast_value;
  napi_ref run_ref, value_ref;
  /* Fast path: OUT exits to the queue's port (its KVM ring was full) go into the queue. */
  struct pio_queue *queue;
  napi_ref queue_ref;
  uint64_t fast_exits;
};

/* Answers the exit in the thread if it is a fast-path read or a queued write; false: the JS thread
 * must see it. */
static bool answer_fast(struct vcpu_thread *t) {
  struct kvm_run *r = t->run;
  if (!r || r->exit_reason != KVM_EXIT_IO || r->io.size != 1) return false;
  /* INVARIANT: KVM puts the port data inside the kvm_run mapping (data_offset < its size). */
  uint8_t *data = (uint8_t *)r + r->io.data_offset;
  if (r->io.direction == KVM_EXIT_IO_OUT) {
    if (!t->queue || !pio_queue_push(t->queue, r->io.port, data, r->io.count)) return false;
  } else {
    if (t->fast_port < 0 || r->io.count != 1 || r->io.port != t->fast_port) return false;
    int32_t v = __atomic_load_n(t->fast_value, __ATOMIC_ACQUIRE);
    if (v < 0 || v > 0xff) return false;
    *data = (uint8_t)v;
  }
  __atomic_add_fetch(&t->fast_exits, 1, __ATOMIC_RELAXED);
  return true;
}

static int kick_signal(void) { return SIGRTMIN + 3; }

static void kick_handler(int sig) { (void)sig; }

static void install_kick_handler(void) {
  static bool installed = false;
  if (installed) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = kick_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(kick_signal(), &sa, NULL);
  installed = true;
}

/* Block the kick signal in this thread and let KVM unblock it only while in KVM_RUN. */
static int setup_signals(int vcpu_fd) {
  sigset_t kick, cur;
  sigemptyset(&kick);
  sigaddset(&kick, kick_signal());
  pthread_sigmask(SIG_BLOCK, &kick, NULL);
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  sigdelset(&cur, kick_signal());
  struct { struct kvm_signal_mask hdr; uint8_t set[8]; } km;
  km.hdr.len = 8; /* the kernel's sigset_t is 64 bits on x86-64 */
  memcpy(km.set, &cur, 8);
  return ioctl(vcpu_fd, KVM_SET_SIGNAL_MASK, &km) < 0 ? errno : 0;
}

static void consume_pending_kicks(void) {
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, kick_signal());
  struct timespec zero = { 0, 0 };
  while (sigtimedwait(&kick, NULL, &zero) > 0) {}
}

static void *thread_main(void *arg) {
  struct vcpu_thread *t = arg;
  int err = setup_signals(t->vcpu_fd);
  pthread_mutex_lock(&t->mu);
  t->tid = (pid_t)syscall(SYS_gettid);
  t->setup_errno = err;
  t->started = true;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  for (;;) {
    pthread_mutex_lock(&t->mu);
    while (t->cmd == CMD_NONE) pthread_cond_wait(&t->cv, &t->mu);
    int cmd = t->cmd;
    t->cmd = CMD_NONE;
    pthread_mutex_unlock(&t->mu);
    if (cmd == CMD_QUIT) break;
    int ret;
    do { ret = ioctl(t->vcpu_fd, KVM_RUN, 0); } while (ret == 0 && answer_fast(t));
    intptr_t code = ret < 0 ? -errno : ret;
    if (code == -EINTR) consume_pending_kicks();
    napi_call_threadsafe_function(t->tsfn, (void *)code, napi_tsfn_nonblocking);
  }
  return NULL;
}

/* Runs on the main thread: hands the KVM_RUN result (0, or -errno) to the JS callback. */
static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  if (env == NULL || cb == NULL) return; /* torn down */
  napi_value undef, argv[1];
  napi_get_undefined(env, &undef);
  argv[0] = make_i32(env, (int32_t)(intptr_t)data);
  napi_call_function(env, undef, cb, 1, argv, NULL);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  struct vcpu_thread *t = data;
  if (!t->joined) return; /* leaked while running: never free memory the thread still uses */
  if (t->run_ref) napi_delete_reference(env, t->run_ref);
  if (t->value_ref) napi_delete_reference(env, t->value_ref);
  if (t->queue_ref) napi_delete_reference(env, t->queue_ref);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
}

static struct vcpu_thread *get_handle(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* vcpuThreadCreate(vcpuFd, onExit: (code: number) => void) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  napi_valuetype t2;
  if (!get_args(env, info, 2, argv) || !arg_i32(env, argv[0], &fd) || napi_typeof(env, argv[1], &t2) != napi_ok ||
      t2 != napi_function)
    return throw_type(env, "vcpuThreadCreate(vcpuFd: number, onExit: function)");
  install_kick_handler();
  struct vcpu_thread *t = calloc(1, sizeof *t);
  if (!t) return throw_errno(env, "calloc", ENOMEM);
  t->vcpu_fd = fd;
  t->fast_port = -1;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  napi_value name;
  napi_create_string_utf8(env, "vcpu", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &t->tsfn) != napi_ok) {
    free(t);
    return throw_errno(env, "napi_create_threadsafe_function", ENOMEM);
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int err = pthread_create(&t->thread, &attr, thread_main, t);
  pthread_attr_destroy(&attr);
  if (err) {
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    return throw_errno(env, "pthread_create", err);
  }
  pthread_mutex_lock(&t->mu);
  while (!t->started) pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
  if (t->setup_errno) {
    int e = t->setup_errno;
    pthread_mutex_lock(&t->mu);
    t->cmd = CMD_QUIT;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    free(t);
    return throw_errno(env, "KVM_SET_SIGNAL_MASK", e);
  }
  napi_value handle;
  napi_create_external(env, t, finalize_handle, NULL, &handle);
  return handle;
}

static void post_cmd(struct vcpu_thread *t, int cmd) {
  pthread_mutex_lock(&t->mu);
  t->cmd = cmd;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

/* vcpuThreadRun(handle): run KVM_RUN once; the result arrives through onExit. */
static napi_value js_run(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct vcpu_thread *t = get_handle(env, argv[0]);
  if (!t || t->joined) return throw_type(env, "vcpuThreadRun: not a live vCPU thread");
  post_cmd(t, CMD_RUN);
  return make_undefined(env);
}

/* vcpuThreadKick(handle): interrupt KVM_RUN now, or make the next one return EINTR. */
static napi_value js_kick(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct vcpu_thread *t = get_handle(env, argv[0]);
  if (!t || t->joined) return throw_type(env, "vcpuThreadKick: not a live vCPU thread");
  int err = pthread_kill(t->thread, kick_signal());
  if (err) return throw_errno(env, "pthread_kill", err);
  return make_undefined(env);
}

static napi_value js_tid(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct vcpu_thread *t = get_handle(env, argv[0]);
  if (!t) return throw_type(env, "vcpuThreadTid: not a vCPU thread");
  return make_i32(env, t->tid);
}

/* vcpuThreadDestroy(handle): stop the thread (kicking it out of KVM_RUN) and join it. */
static napi_value js_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct vcpu_thread *t = get_handle(env, argv[0]);
  if (!t) return throw_type(env, "vcpuThreadDestroy: not a vCPU thread");
  if (t->joined) return make_undefined(env);
  post_cmd(t, CMD_QUIT);
  pthread_kill(t->thread, kick_signal());
  pthread_join(t->thread, NULL);
  t->joined = true;
  napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
  return make_undefined(env);
}

/* vcpuThreadSetFastPioIn(handle, run: Uint8Array (the kvm_run mapping), port, value: Int32Array(1)):
 * from now on 1-byte reads of `port` get value[0] when it is 0..255, in the vCPU thread. Call it
 * before the first vcpuThreadRun, once. */
static napi_value js_set_fast_pio_in(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t port;
  void *run, *value;
  size_t run_len, value_len;
  napi_typedarray_type vt;
  struct vcpu_thread *t;
  if (!get_args(env, info, 4, argv) || !(t = get_handle(env, argv[0])) || !arg_bytes(env, argv[1], &run, &run_len) ||
      !arg_i32(env, argv[2], &port) || napi_get_typedarray_info(env, argv[3], &vt, &value_len, &value, NULL, NULL) != napi_ok ||
      vt != napi_int32_array || value_len < 1 || run_len < sizeof(struct kvm_run) || port < 0 || port > 0xffff)
    return throw_type(env, "vcpuThreadSetFastPioIn(handle, run: Uint8Array, port: number, value: Int32Array)");
  if (t->run) return throw_errno(env, "vcpuThreadSetFastPioIn", EBUSY);
  napi_create_reference(env, argv[1], 1, &t->run_ref);
  napi_create_reference(env, argv[3], 1, &t->value_ref);
  t->fast_value = value;
  t->fast_port = port;
  __atomic_store_n(&t->run, (struct kvm_run *)run, __ATOMIC_RELEASE);
  return make_undefined(env);
}

/* vcpuThreadSetPioQueue(handle, queue): OUT exits to the queue's port that KVM's full ring sent
 * here are queued by the thread. Call it after vcpuThreadSetFastPioIn (it needs the run mapping)
 * and before the first vcpuThreadRun, once. */
static napi_value js_set_pio_queue(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct vcpu_thread *t;
  struct pio_queue *q;
  if (!get_args(env, info, 2, argv) || !(t = get_handle(env, argv[0])) || !(q = pio_queue_from(env, argv[1])))
    return throw_type(env, "vcpuThreadSetPioQueue(handle, queue)");
  if (!t->run || t->queue) return throw_errno(env, "vcpuThreadSetPioQueue", t->run ? EBUSY : EINVAL);
  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &t->queue_ref));
  __atomic_store_n(&t->queue, q, __ATOMIC_RELEASE);
  return make_undefined(env);
}

/* vcpuThreadFastExits(handle) -> exits answered in the thread so far. */
static napi_value js_fast_exits(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct vcpu_thread *t;
  if (!get_args(env, info, 1, argv) || !(t = get_handle(env, argv[0]))) return throw_type(env, "vcpuThreadFastExits(handle)");
  return make_i64(env, (int64_t)__atomic_load_n(&t->fast_exits, __ATOMIC_RELAXED));
}

void init_vcpu_thread(napi_env env, napi_value exports) {
  export_fn(env, exports, "vcpuThreadSetFastPioIn", js_set_fast_pio_in);
  export_fn(env, exports, "vcpuThreadFastExits", js_fast_exits);
  export_fn(env, exports, "vcpuThreadSetPioQueue", js_set_pio_queue);
  export_fn(env, exports, "vcpuThreadCreate", js_create);
  export_fn(env, exports, "vcpuThreadRun", js_run);
  export_fn(env, exports, "vcpuThreadKick", js_kick);
  export_fn(env, exports, "vcpuThreadTid", js_tid);
  export_fn(env, exports, "vcpuThreadDestroy", js_destroy);
}
