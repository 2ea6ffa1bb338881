// Parsing of one descriptor chain of a split virtqueue (virtio 1.2 §2.7.5, §2.7.5.3 indirect
// descriptors) into readable and writable guest buffers, with every guest-written field checked.
// It does not touch the rings (queue.ts) and does not interpret the bytes (the devices do).

import type { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_MAX_SIZE } from './virtio-abi.js';

/** Why a chain (or a ring) was refused. Stable strings: they name metrics and log lines. */
export type VirtqueueFault =
  | 'bad-head'          // a descriptor index past the end of the table
  | 'loop'              // a chain that visits more descriptors than the table holds
  | 'out-of-range'      // a buffer or ring outside guest RAM
  | 'wrap'              // address + length overflows 64 bits, or the total length overflows 32
  | 'nested-indirect'   // an indirect table that points to another indirect table
  | 'bad-indirect'      // an indirect table of bad size, or INDIRECT together with NEXT
  | 'readable-after-writable'
  | 'bad-avail-index'   // the driver claims more new buffers than the queue holds
  | 'bad-queue';        // a queue set up with a bad size or misaligned rings

export class VirtqueueError extends Error {
  readonly code = 'ERR_VIRTQUEUE';
  constructor(readonly fault: VirtqueueFault, detail: string) {
    super(`virtqueue: ${detail} (${fault}); the guest driver is broken or hostile, so the device needs a reset`);
    this.name = 'VirtqueueError';
  }
}

/** One guest buffer, already checked to lie inside guest RAM. */
export interface GuestBuffer {
  readonly addr: number;
  readonly len: number;
}

export interface DescriptorChain {
  /** The head's index: what goes back in the used ring. */
  readonly head: number;
  readonly readable: readonly GuestBuffer[];
  readonly writable: readonly GuestBuffer[];
  readonly readableBytes: number;
  readonly writableBytes: number;
}

/** Size of one descriptor: 0 u64 addr | 8 u32 len | 12 u16 flags | 14 u16 next. */
export const DESCRIPTOR_SIZE = 16;
const U32_LIMIT = 2 ** 32;

interface Descriptor {
  /** Exact below 2^53; above, only ever compared (and refused as outside RAM). */
  addr: number;
  /** addr + len overflows 64 bits (computed exactly from the two halves). */
  wraps: boolean;
  len: number;
  flags: number;
  next: number;
}

function readDescriptor(mem: GuestMemory, table: number, index: number): Descriptor {
  const v = mem.view(table + index * DESCRIPTOR_SIZE, DESCRIPTOR_SIZE);
  // Addresses past 2^53 are not RAM here; keep them as an unsafe number that checkBuffer refuses.
  const hi = v.getUint32(4, true);
  const addr = hi * 2 ** 32 + v.getUint32(0, true);
  const len = v.getUint32(8, true);
  const wraps = hi === 0xffffffff && v.getUint32(0, true) + len > 0xffffffff;
  return { addr, wraps, len, flags: v.getUint16(12, true), next: v.getUint16(14, true) };
}

class ChainBuilder {
  readonly readable: GuestBuffer[] = [];
  readonly writable: GuestBuffer[] = [];
  readableBytes = 0;
  writableBytes = 0;

  constructor(private readonly mem: GuestMemory) {}

  add(d: Descriptor): void {
    if (d.wraps) throw new VirtqueueError('wrap', `buffer at 0x${d.addr.toString(16)} of ${d.len} bytes wraps around 2^64`);
    if (d.len > 0 && !this.mem.checkRange(d.addr, d.len)) {
      throw new VirtqueueError('out-of-range', `buffer [0x${d.addr.toString(16)}, +${d.len}) is not inside guest RAM`);
    }
    const buf = { addr: d.addr, len: d.len };
    if (d.flags & VIRTQ_DESC_F_WRITE) {
      this.writable.push(buf);
      this.writableBytes += d.len;
    } else {
      if (this.writable.length > 0) throw new VirtqueueError('readable-after-writable', 'a device-readable buffer follows a device-writable one');
      this.readable.push(buf);
      this.readableBytes += d.len;
    }
    if (this.readableBytes + this.writableBytes >= U32_LIMIT) throw new VirtqueueError('wrap', 'the chain is 4 GiB or longer');
  }
}

/**
 * Walks the chain that starts at `head` in the descriptor table at `table` (`queueSize` entries).
 * INVARIANT: every guest-written index, address and length is checked here before use; buffers
 * returned lie inside guest RAM, so a device can never reach host memory outside it.
 */
export function parseDescriptorChain(mem: GuestMemory, table: number, queueSize: number, head: number): DescriptorChain {
  if (head >= queueSize) throw new VirtqueueError('bad-head', `head index ${head} is past the queue size ${queueSize}`);
  const b = new ChainBuilder(mem);
  let index = head;
  for (let visited = 0; ; visited++) {
    if (visited >= queueSize) throw new VirtqueueError('loop', `the chain from head ${head} visits more than ${queueSize} descriptors`);
    const d = readDescriptor(mem, table, index);
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      if (d.flags & VIRTQ_DESC_F_NEXT) throw new VirtqueueError('bad-indirect', 'a descriptor has both INDIRECT and NEXT');
      walkIndirect(mem, b, d);
      break;
    }
    b.add(d);
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
    if (d.next >= queueSize) throw new VirtqueueError('bad-head', `next index ${d.next} is past the queue size ${queueSize}`);
    index = d.next;
  }
  return { head, readable: b.readable, writable: b.writable, readableBytes: b.readableBytes, writableBytes: b.writableBytes };
}

/** §2.7.5.3.1: the table is one level deep, a whole number of descriptors, at most a queue's worth. */
function walkIndirect(mem: GuestMemory, b: ChainBuilder, d: Descriptor): void {
  if (d.len === 0 || d.len % DESCRIPTOR_SIZE !== 0) throw new VirtqueueError('bad-indirect', `indirect table of ${d.len} bytes is not a whole number of descriptors`);
  const entries = d.len / DESCRIPTOR_SIZE;
  if (entries > VIRTQ_MAX_SIZE) throw new VirtqueueError('bad-indirect', `indirect table of ${entries} descriptors is over ${VIRTQ_MAX_SIZE}`);
  if (d.wraps || !mem.checkRange(d.addr, d.len)) {
    throw new VirtqueueError('out-of-range', `indirect table [0x${d.addr.toString(16)}, +${d.len}) is not inside guest RAM`);
  }
  let index = 0;
  for (let visited = 0; ; visited++) {
    if (visited >= entries) throw new VirtqueueError('loop', `the indirect chain visits more than its ${entries} descriptors`);
    const e = readDescriptor(mem, d.addr, index);
    if (e.flags & VIRTQ_DESC_F_INDIRECT) throw new VirtqueueError('nested-indirect', 'an indirect table points to another indirect table');
    b.add(e);
    if (!(e.flags & VIRTQ_DESC_F_NEXT)) return;
    if (e.next >= entries) throw new VirtqueueError('bad-head', `indirect next index ${e.next} is past the table's ${entries} entries`);
    index = e.next;
  }
}
