// Phase 2 of a swap, partition: instance A gives up the CPUs B will start on. A re-pins every one
// of its threads (main, libuv pool, vCPU threads) off them and narrows its cpuset; its VMs keep
// running on what A keeps. The budget is not split: B receives the same VMs, whose RAM is the
// same memory, and A's reservations are released VM by VM as they leave.

import type { SwapPartition } from './host.js';

export interface PartitionShrink {
  /** The CPUs A had before the swap. */
  before: number[];
  /** Gives the CPUs back to A (rollback). */
  growBack(): void;
}

export function shrinkForSwap(partition: SwapPartition, aCpus: readonly number[]): PartitionShrink {
  const before = partition.cpus;
  const same = before.length === aCpus.length && before.every((c, i) => c === aCpus[i]);
  if (!same) partition.shrink(aCpus);
  return {
    before,
    growBack: () => {
      if (!same) partition.grow(before);
    },
  };
}
