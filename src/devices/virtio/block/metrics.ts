// Counters of one virtio-blk device, exported by the instance's /metrics.

export interface VirtioBlockMetrics {
  readRequests: number;
  writeRequests: number;
  flushRequests: number;
  discardRequests: number;
  getIdRequests: number;
  readBytes: number;
  writeBytes: number;
  /** Requests the back-end failed (status IOERR), writes to a read-only disk included. */
  ioErrors: number;
  /** Requests with an unknown type or flags (status UNSUPP). */
  unsupported: number;
  /** Requests whose shape is wrong: short header, no status byte, misplaced or misaligned data. */
  malformed: number;
}

export function newVirtioBlockMetrics(): VirtioBlockMetrics {
  return { readRequests: 0, writeRequests: 0, flushRequests: 0, discardRequests: 0, getIdRequests: 0, readBytes: 0, writeBytes: 0, ioErrors: 0, unsupported: 0, malformed: 0 };
}
