// The shapes every device model shares: port and MMIO access, the save/restore contract,
// and the small interfaces through which a device reaches the outside world.
// Pure: device models never import node:* and never hold file descriptors.

/** A device on the port I/O bus. `offset` is relative to the start of its range. */
export interface PioDevice {
  pioRead(offset: number, data: Uint8Array): void;
  pioWrite(offset: number, data: Uint8Array): void;
}

/** A device on the MMIO bus. `offset` is relative to the start of its range. */
export interface MmioDevice {
  mmioRead(offset: number, data: Uint8Array): void;
  mmioWrite(offset: number, data: Uint8Array): void;
}

/**
 * Save and restore. There is deliberately no default implementation: a device that
 * forgets to save its state must fail to compile, not lose data silently.
 * What cannot be serialized (memory, fds, IRQ lines, sinks) travels in the restore
 * arguments of the class's static `restore(args, state)`.
 */
export interface Persist<State> {
  saveState(): State;
}

/** An interrupt line into the irqchip. Edge devices call `pulse`; level devices `setLevel`. */
export interface IrqLine {
  setLevel(high: boolean): void;
  pulse(): void;
}

/** Where a device sends bytes it produces (a console stream, a log). */
export interface ByteSink {
  write(bytes: Uint8Array): void;
}

/** Wall-clock time, injected so that devices stay pure and testable. */
export interface WallClock {
  nowMs(): number;
}
