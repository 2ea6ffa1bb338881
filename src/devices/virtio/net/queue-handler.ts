// Moves frames between the virtio-net queues (virtio 1.2 §5.1.6) and the back-end (a tap): every
// buffer starts with the 12-byte virtio_net_hdr; no offloads are negotiated, so it is all zero
// except num_buffers = 1 on receive.

import type { GuestMemory } from '../../../memory/guest-memory.js';
import { ChainReader, ChainWriter } from '../chain-io.js';
import type { DescriptorChain } from '../descriptor-chain.js';
import type { Virtqueue } from '../queue.js';
import type { VirtioNetMetrics } from './metrics.js';

/** sizeof(struct virtio_net_hdr) with VIRTIO_F_VERSION_1. */
export const VIRTIO_NET_HDR_SIZE = 12;
/** The largest frame either way: a 64 KiB packet plus the Ethernet header (no GSO here). */
export const MAX_FRAME_SIZE = 65550;
const ETH_HEADER_SIZE = 14;

/** The network behind the device. */
export interface NetBackend {
  /** Reads one frame into buf; returns its length, or -1 when none is queued. */
  read(buf: Uint8Array): number;
  /** Sends one frame; false if the back-end's queue is full (the frame is dropped). */
  write(frame: Uint8Array): boolean;
  /** Whether the device wants to hear (NetDevice.backendReadable) when a frame can be read. */
  setReadInterest(on: boolean): void;
}

/** Sends the frame in one transmit chain; returns the used length (always 0: nothing is written). */
export function transmitFrame(mem: GuestMemory, chain: DescriptorChain, backend: NetBackend, frame: Uint8Array, m: VirtioNetMetrics): number {
  const total = chain.readableBytes - VIRTIO_NET_HDR_SIZE;
  if (total < ETH_HEADER_SIZE || total > MAX_FRAME_SIZE) {
    m.txMalformed++;
    return 0;
  }
  const r = new ChainReader(mem, chain.readable, chain.readableBytes);
  r.take(VIRTIO_NET_HDR_SIZE);
  const out = frame.subarray(0, total);
  r.readInto(out);
  if (!backend.write(out)) {
    m.txDropped++;
    return 0;
  }
  m.txFrames++;
  m.txBytes += total;
  return 0;
}

/**
 * Fills receive chains with frames from the back-end while both last. Returns how many frames were
 * delivered and whether the back-end still had frames when the guest ran out of buffers.
 * A frame is only read once a chain is there to take it, so none is ever held by the device.
 */
export function receiveFrames(mem: GuestMemory, q: Virtqueue, backend: NetBackend, frame: Uint8Array, m: VirtioNetMetrics): { delivered: number; starved: boolean } {
  let delivered = 0;
  for (;;) {
    if (q.pending() === 0 && !q.armNotification()) return { delivered, starved: true };
    const n = backend.read(frame);
    if (n < 0) return { delivered, starved: false };
    const chain = q.pop()!;
    if (chain.writableBytes < VIRTIO_NET_HDR_SIZE + n) {
      m.rxDropped++;
      q.pushUsed(chain.head, 0);
      delivered++;
      continue;
    }
    const w = new ChainWriter(mem, chain.writable, chain.writableBytes);
    const header = new Uint8Array(VIRTIO_NET_HDR_SIZE);
    header[10] = 1; // num_buffers
    w.write(header);
    w.write(frame.subarray(0, n));
    q.pushUsed(chain.head, w.written);
    m.rxFrames++;
    m.rxBytes += n;
    delivered++;
  }
}
