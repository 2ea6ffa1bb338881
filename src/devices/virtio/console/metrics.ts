// Counters of one virtio-console device, exported by the instance's /metrics.

export interface VirtioConsoleMetrics {
  /** Bytes the guest received (host to guest) and sent (guest to host). */
  rxBytes: number;
  txBytes: number;
  /** Host input refused because the pending buffer was full. */
  inputDropped: number;
  emergencyWrites: number;
}

export function newVirtioConsoleMetrics(): VirtioConsoleMetrics {
  return { rxBytes: 0, txBytes: 0, inputDropped: 0, emergencyWrites: 0 };
}
