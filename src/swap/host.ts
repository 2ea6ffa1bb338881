// What the swap needs from the instance it runs in, as interfaces: swap/ sits below instance/ and
// never imports it. The daemon implements these; tests can too.

import type { Machine } from '../vmm/machine.js';

/** A VM that can be moved: running in a Machine, with a console whose tail travels along. */
export interface MovableVm {
  readonly name: string;
  /** The stored VM definition, sent to B as is (B validates it). */
  readonly config: { readonly name: string; readonly memMib: number };
  readonly createdAt: string;
  readonly running: Machine | undefined;
  readonly console: { flush(): void; readTail(maxBytes: number): Uint8Array; readonly bytesOut: number; handOffClients(): number[]; takeHeldInput(): Uint8Array };
  /** The virtio console's stream, for a VM that has one: its clients and undelivered input move too. */
  readonly vconsole?: { flush(): void; handOffClients(): number[]; takeHeldInput(): Uint8Array };
  /** Tears down this instance's copy after B runs the VM. */
  detachAfterMove(): Promise<void>;
}

/** The partition as the swap changes it. */
export interface SwapPartition {
  readonly cpus: number[];
  shrink(cpus: readonly number[]): void;
  grow(cpus: readonly number[]): void;
  /** Puts a process A started (B, or B's version check) on `cpus`, outside A's partition; see Partition.placeOutside. */
  placeOutside(pid: number, cpus: readonly number[]): Promise<void>;
}

export interface SwapHost {
  readonly stateDir: string;
  readonly version: string;
  /** The directory this instance's build runs from, and when this process started (epoch ms). */
  readonly packageRoot: string;
  readonly startedAtMs: number;
  readonly partition: SwapPartition;
  readonly budgetMib: number;
  /** The platform record restricted to `cpus`, encoded (the HELLO message's blob). */
  platformSliceFor(cpus: readonly number[], budgetMib: number): Uint8Array;
  /** Resolves once every VM's stored state asked for so far is written (B reads those files). */
  vmStateSettled(): Promise<void>;
  /** VMs running now, in the order to move them. */
  runningVms(): MovableVm[];
  /** Forgets a VM that now belongs to B. */
  forgetMoved(name: string): void;
  /** The API's listening socket fd and the state-dir lock fd, handed to B at retirement. */
  retirementFds(): { apiListenFd: number; lockFd: number };
  /**
   * Resolves once a probe VM has been through the pause window's code in this process (swap/rehearse.ts),
   * so A's first VM does not pay for cold code; never rejects. Normally done long before a swap.
   */
  rehearsePauseWindow(): Promise<void>;
  /** After B is gone without cleaning up (it crashed or was killed): remove what it left. */
  cleanUpAfterB(): void;
  log(event: string, fields: Record<string, unknown>): void;
}
