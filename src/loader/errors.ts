// Errors raised while reading or placing a guest kernel image.
// Not for host failures (those come from sys/) and not for boot-structure layout limits (arch/x86_64/errors.ts).

/** Stable codes: callers and tests match on these, never on the message. */
export type KernelImageErrorCode =
  /** The bytes are not a well-formed ELF64/x86-64 image or bzImage. */
  | 'ERR_KERNEL_FORMAT'
  /** The image is well formed but asks for something this loader does not support (no entry point we can use). */
  | 'ERR_KERNEL_UNSUPPORTED'
  /** The image (or its initrd) does not fit in guest RAM where it must go. */
  | 'ERR_KERNEL_PLACEMENT';

/** A kernel image that cannot be booted; the message names what was found and what to do about it. */
export class KernelImageError extends Error {
  override readonly name = 'KernelImageError';
  constructor(readonly code: KernelImageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
