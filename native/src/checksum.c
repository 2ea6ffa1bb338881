/* CRC-32C (Castagnoli) over a byte buffer, for the handover's checksums: the SSE4.2 crc32
 * instruction when the CPU has it, a table otherwise. Same convention as src/state/crc32c.ts
 * (pass a previous result to continue over split input). No policy here. */
#include "common.h"
#include <stdint.h>
#include <string.h>

static uint32_t table[256];

static void init_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    table[n] = c;
  }
}

static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t n) {
  while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = __builtin_ia32_crc32di(c64, w);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}
#endif

static bool have_sse42;

/* crc32c(buf: Uint8Array, crc: number) -> number */
static napi_value js_crc32c(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data;
  size_t len;
  int64_t seed;
  if (!get_args(env, info, 2, argv) || !arg_bytes(env, argv[0], &data, &len) || !arg_i64(env, argv[1], &seed) || seed < 0 ||
      seed > 0xffffffffLL)
    return throw_type(env, "crc32c(buf: Uint8Array, crc: number)");
  uint32_t c = ~(uint32_t)seed;
#if defined(__x86_64__)
  c = have_sse42 ? crc_sse42(c, data, len) : crc_table(c, data, len);
#else
  c = crc_table(c, data, len);
#endif
  return make_i64(env, (int64_t)(uint32_t)~c);
}

void init_checksum(napi_env env, napi_value exports) {
  init_table();
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
  export_fn(env, exports, "crc32c", js_crc32c);
}
