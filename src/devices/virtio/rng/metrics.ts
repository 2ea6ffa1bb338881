// Counters of one virtio-rng device, exported by the instance's /metrics.

export interface VirtioRngMetrics {
  requests: number;
  bytes: number;
}

export function newVirtioRngMetrics(): VirtioRngMetrics {
  return { requests: 0, bytes: 0 };
}
