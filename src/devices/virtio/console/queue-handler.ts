// Moves bytes through virtio-console port 0 (virtio 1.2 §5.3.6): host input into the guest's
// receive buffers, the guest's transmit buffers out to a byte sink.

import type { GuestMemory } from '../../../memory/guest-memory.js';
import type { ByteSink } from '../../device.js';
import { ChainReader, ChainWriter } from '../chain-io.js';
import type { DescriptorChain } from '../descriptor-chain.js';
import type { VirtioConsoleMetrics } from './metrics.js';

/** Copies one transmit chain to the sink; the used length is 0. */
export function transmitBytes(mem: GuestMemory, chain: DescriptorChain, sink: ByteSink, m: VirtioConsoleMetrics): number {
  if (chain.readableBytes === 0) return 0;
  const bytes = new Uint8Array(chain.readableBytes);
  new ChainReader(mem, chain.readable, chain.readableBytes).readInto(bytes);
  m.txBytes += bytes.byteLength;
  sink.write(bytes);
  return 0;
}

/** Fills one receive chain from `pending`; returns the number of bytes written (the used length). */
export function receiveBytes(mem: GuestMemory, chain: DescriptorChain, pending: Uint8Array, m: VirtioConsoleMetrics): number {
  const w = new ChainWriter(mem, chain.writable, chain.writableBytes);
  const n = w.write(pending);
  m.rxBytes += n;
  return n;
}
