/* A VM's console output queue behind KVM's coalesced PIO ring; see pio_queue.c. */
#pragma once
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

struct pio_queue;

/* The queue behind a JS handle, or NULL if `v` is not one. */
struct pio_queue *pio_queue_from(napi_env env, napi_value v);

/* From a vCPU thread: moves the ring into the queue, then appends the `n` bytes of an OUT exit to
 * `port`. False (and nothing appended) if that is not the queue's port or there is no room: the
 * exit then goes to JavaScript, which takes the queue first, so the order holds. */
bool pio_queue_push(struct pio_queue *q, uint16_t port, const uint8_t *data, uint32_t n);
