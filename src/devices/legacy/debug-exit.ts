// The debug-exit port (0xf4): a guest write ends the VM with the written value's low byte as
// its exit status, so test guests can report pass or fail. It is not QEMU's isa-debug-exit,
// which reports (value << 1) | 1; here the status is the value itself.
// Spec: none beyond this header; the port and its meaning are swapvisor's (see arch/x86_64/layout.ts).

import type { Persist, PioDevice } from '../device.js';
import { readRecord } from './device-state-error.js';

// Ports, by offset from 0xf4:
//   off  read     write (1, 2 or 4 bytes)
//   0    0        exit status = value & 0xff
export const DEBUG_EXIT_PORT_COUNT = 1;

const DEVICE = 'debug-exit';

export interface DebugExitArgs {
  /** Called on every write, with the status in [0, 255]. Stopping the VM is the caller's job. */
  readonly onExit: (status: number) => void;
}

export type DebugExitRestoreArgs = DebugExitArgs;

/** The device has no state; the empty object keeps the save/restore contract uniform. */
export type DebugExitState = Record<string, never>;

/** Counters since construction or restore (not saved). */
export interface DebugExitMetrics {
  exits: number;
  /** Writes of a width other than 1, 2 or 4 bytes, or outside the port. */
  ignoredWrites: number;
}

export class DebugExit implements PioDevice, Persist<DebugExitState> {
  readonly metrics: DebugExitMetrics = { exits: 0, ignoredWrites: 0 };

  private readonly onExit: (status: number) => void;

  constructor(args: DebugExitArgs) {
    this.onExit = args.onExit;
  }

  pioRead(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  pioWrite(offset: number, data: Uint8Array): void {
    const width = data.length;
    if (offset !== 0 || (width !== 1 && width !== 2 && width !== 4)) {
      this.metrics.ignoredWrites++;
      return;
    }
    this.metrics.exits++;
    // Port I/O is little-endian, so the low byte of the value is the first byte.
    this.onExit(data[0]!);
  }

  saveState(): DebugExitState {
    return {};
  }

  /** Checks only that the state is an object: unknown fields from a newer writer are skipped. */
  static restore(args: DebugExitRestoreArgs, state: DebugExitState): DebugExit {
    readRecord(DEVICE, state);
    return new DebugExit(args);
  }
}
