// Executes virtio-blk requests (virtio 1.2 §5.2.6): one descriptor chain in, one status byte and
// the data out. Every guest-written field is checked; a malformed request is answered with IOERR
// (or dropped if it has no status byte) and counted, never executed.

import type { GuestMemory } from '../../../memory/guest-memory.js';
import { ChainReader, ChainWriter } from '../chain-io.js';
import type { DescriptorChain } from '../descriptor-chain.js';
import type { VirtioBlockMetrics } from './metrics.js';

export const SECTOR_SIZE = 512;
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;
export const VIRTIO_BLK_ID_BYTES = 20;
export const VIRTIO_BLK_DISCARD_FLAG_UNMAP = 1;
/** Discard segments accepted per request (config max_discard_seg). */
export const MAX_DISCARD_SEGMENTS = 16;
/** The largest discard per segment, in sectors (config max_discard_sectors). */
export const MAX_DISCARD_SECTORS = 0x3fffff;

/** The disk behind the device. Offsets and lengths in bytes; errors are thrown. */
export interface BlockBackend {
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  read(buf: Uint8Array, offset: number): void;
  write(buf: Uint8Array, offset: number): void;
  flush(): void;
  discard(offset: number, length: number): void;
}

export interface BlockRequestContext {
  memory: GuestMemory;
  backend: BlockBackend;
  metrics: VirtioBlockMetrics;
  serial: string;
  capacitySectors: number;
}

class RequestError extends Error {
  constructor(readonly status: number, readonly kind: 'malformed' | 'unsupported' | 'io') { super(kind); }
}

const malformed = (): RequestError => new RequestError(VIRTIO_BLK_S_IOERR, 'malformed');

// Layout of the request header (device-readable, first 16 bytes): 0 u32 type | 4 u32 reserved | 8 u64 sector.
// Layout of a discard segment (16 bytes): 0 u64 sector | 8 u32 num_sectors | 12 u32 flags.
/** Runs one request; returns the number of bytes written into the chain (the used length). */
export function handleBlockRequest(ctx: BlockRequestContext, chain: DescriptorChain): number {
  const { memory, metrics } = ctx;
  if (chain.writableBytes < 1) {
    metrics.malformed++;
    return 0; // no status byte: nothing can be reported, the request is dropped
  }
  const reader = new ChainReader(memory, chain.readable, chain.readableBytes);
  const writer = new ChainWriter(memory, chain.writable, chain.writableBytes - 1);
  let status = VIRTIO_BLK_S_OK;
  try {
    const header = new Uint8Array(16);
    if (reader.readInto(header) !== 16) throw malformed();
    const h = new DataView(header.buffer);
    const type = h.getUint32(0, true);
    const sector = h.getUint32(8, true) + h.getUint32(12, true) * 2 ** 32;
    execute(ctx, type, sector, reader, writer);
  } catch (e) {
    if (!(e instanceof RequestError)) {
      // The back-end failed (EIO, ENOSPC, ...): the guest sees IOERR.
      metrics.ioErrors++;
      status = VIRTIO_BLK_S_IOERR;
    } else {
      if (e.kind === 'malformed') metrics.malformed++;
      else if (e.kind === 'unsupported') metrics.unsupported++;
      else metrics.ioErrors++;
      status = e.status;
    }
  }
  const last = chain.writable[chain.writable.length - 1]!;
  memory.writeU8(last.addr + last.len - 1, status);
  return writer.written + 1;
}

function execute(ctx: BlockRequestContext, type: number, sector: number, reader: ChainReader, writer: ChainWriter): void {
  const { backend, metrics } = ctx;
  switch (type) {
    case VIRTIO_BLK_T_IN: {
      metrics.readRequests++;
      if (reader.remaining !== 0) throw malformed(); // data placed in device-readable buffers
      const offset = checkedRange(ctx, sector, writer.remaining);
      let at = offset;
      for (const view of writer.take(writer.remaining)) { backend.read(view, at); at += view.byteLength; }
      metrics.readBytes += at - offset;
      return;
    }
    case VIRTIO_BLK_T_OUT: {
      metrics.writeRequests++;
      if (writer.remaining !== 0) throw malformed();
      const offset = checkedRange(ctx, sector, reader.remaining);
      if (backend.readOnly) throw new RequestError(VIRTIO_BLK_S_IOERR, 'io');
      let at = offset;
      for (const view of reader.take(reader.remaining)) { backend.write(view, at); at += view.byteLength; }
      metrics.writeBytes += at - offset;
      return;
    }
    case VIRTIO_BLK_T_FLUSH:
      metrics.flushRequests++;
      backend.flush();
      return;
    case VIRTIO_BLK_T_GET_ID: {
      metrics.getIdRequests++;
      if (reader.remaining !== 0 || writer.remaining < 1) throw malformed();
      const id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
      for (let i = 0; i < Math.min(ctx.serial.length, VIRTIO_BLK_ID_BYTES); i++) id[i] = ctx.serial.charCodeAt(i) & 0x7f;
      writer.write(id.subarray(0, Math.min(VIRTIO_BLK_ID_BYTES, writer.remaining)));
      return;
    }
    case VIRTIO_BLK_T_DISCARD:
      metrics.discardRequests++;
      discard(ctx, reader, writer);
      return;
    default:
      throw new RequestError(VIRTIO_BLK_S_UNSUPP, 'unsupported');
  }
}

function discard(ctx: BlockRequestContext, reader: ChainReader, writer: ChainWriter): void {
  const n = reader.remaining / 16;
  if (writer.remaining !== 0 || !Number.isInteger(n) || n < 1 || n > MAX_DISCARD_SEGMENTS) throw malformed();
  const segments: Array<[number, number]> = [];
  const seg = new Uint8Array(16);
  const d = new DataView(seg.buffer);
  for (let i = 0; i < n; i++) {
    reader.readInto(seg);
    const sector = d.getUint32(0, true) + d.getUint32(4, true) * 2 ** 32;
    const count = d.getUint32(8, true);
    if (d.getUint32(12, true) & ~VIRTIO_BLK_DISCARD_FLAG_UNMAP) throw new RequestError(VIRTIO_BLK_S_UNSUPP, 'unsupported');
    if (count > MAX_DISCARD_SECTORS) throw malformed();
    segments.push([checkedRange(ctx, sector, count * SECTOR_SIZE), count * SECTOR_SIZE]);
  }
  if (ctx.backend.readOnly) throw new RequestError(VIRTIO_BLK_S_IOERR, 'io');
  for (const [offset, length] of segments) if (length > 0) ctx.backend.discard(offset, length);
}

/** The byte offset of [sector, +bytes), which must be whole sectors inside the disk. */
function checkedRange(ctx: BlockRequestContext, sector: number, bytes: number): number {
  if (bytes % SECTOR_SIZE !== 0) throw malformed();
  if (!Number.isSafeInteger(sector) || sector + bytes / SECTOR_SIZE > ctx.capacitySectors) {
    throw new RequestError(VIRTIO_BLK_S_IOERR, 'io');
  }
  return sector * SECTOR_SIZE;
}
