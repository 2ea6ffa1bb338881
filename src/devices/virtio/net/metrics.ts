// Counters of one virtio-net device, exported by the instance's /metrics.

export interface VirtioNetMetrics {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Frames from the back-end larger than the guest's receive buffer: dropped. */
  rxDropped: number;
  /** Guest frames shorter than an Ethernet header or longer than the largest frame: dropped. */
  txMalformed: number;
  /** Guest frames the back-end refused (its queue was full): dropped, as a NIC would. */
  txDropped: number;
}

export function newVirtioNetMetrics(): VirtioNetMetrics {
  return { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, rxDropped: 0, txMalformed: 0, txDropped: 0 };
}
