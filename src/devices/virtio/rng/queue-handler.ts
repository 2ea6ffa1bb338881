// Fills virtio-rng requests (virtio 1.2 §5.4.6): every device-writable buffer of a chain gets
// random bytes from the entropy source, up to a per-request cap.

import type { GuestMemory } from '../../../memory/guest-memory.js';
import { ChainWriter } from '../chain-io.js';
import type { DescriptorChain } from '../descriptor-chain.js';
import type { VirtioRngMetrics } from './metrics.js';

/** Where random bytes come from (the host's getrandom). */
export interface EntropySource {
  fill(buf: Uint8Array): void;
}

/** The most bytes one request gets: bounds the work a guest can ask for per notification. */
export const MAX_RNG_REQUEST_BYTES = 64 * 1024;

export function fillRandom(mem: GuestMemory, chain: DescriptorChain, source: EntropySource, m: VirtioRngMetrics): number {
  const w = new ChainWriter(mem, chain.writable, Math.min(chain.writableBytes, MAX_RNG_REQUEST_BYTES));
  for (const view of w.take(w.length)) source.fill(view);
  m.requests++;
  m.bytes += w.written;
  return w.written;
}
