// Errors raised while laying out x86-64 boot structures in guest memory.
// These are configuration problems (too many vCPUs, a command line that is too long, too little RAM),
// not problems with the kernel image: those are KernelImageError in src/loader/errors.ts.

export type BootLayoutErrorCode =
  /** The kernel command line does not fit its buffer or contains bytes it cannot carry. */
  | 'ERR_BOOT_CMDLINE'
  /** A boot structure does not fit where the layout puts it, or guest RAM is too small for it. */
  | 'ERR_BOOT_LAYOUT';

export class BootLayoutError extends Error {
  override readonly name = 'BootLayoutError';
  constructor(readonly code: BootLayoutErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
