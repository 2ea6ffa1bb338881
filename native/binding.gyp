{
  "targets": [
    {
      "target_name": "swapvisor_native",
      "sources": ["src/addon.c", "src/fd.c", "src/mem.c", "src/sock.c", "src/vcpu_thread.c", "src/checksum.c", "src/pio_queue.c", "src/file.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
