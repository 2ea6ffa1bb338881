// The loop every request/response device runs on a notification: take each available chain, let
// the device handle it, return it used, re-arm EVENT_IDX and look again, then interrupt once.

import type { DescriptorChain } from './descriptor-chain.js';
import type { VirtioQueueContext } from './virtio-device.js';

/** `handle` returns the used length. Errors from a malformed chain propagate (the transport resets). */
export function serviceQueue(ctx: VirtioQueueContext, index: number, handle: (chain: DescriptorChain) => number): number {
  const q = ctx.queues[index];
  if (!q) return 0;
  let done = 0;
  do {
    for (let chain = q.pop(); chain; chain = q.pop()) {
      q.pushUsed(chain.head, handle(chain));
      done++;
    }
  } while (q.armNotification());
  if (done > 0) ctx.signalUsed(index);
  return done;
}
