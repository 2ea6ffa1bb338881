// Writes the kernel command line into guest memory as NUL-terminated bytes. Shared by the PVH, direct
// long-mode and Linux boot-protocol paths, which all put it at CMDLINE_START.

import { type Gpa, gpa } from '../../memory/gpa.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { BootLayoutError } from './errors.js';
import { CMDLINE_MAX_SIZE, CMDLINE_START } from './layout.js';

/** The command line as bytes without the NUL: ASCII only, since kernels parse it as bytes and we want no surprises. */
export function encodeCmdline(cmdline: string): Uint8Array {
  const bytes = new Uint8Array(cmdline.length);
  for (let i = 0; i < cmdline.length; i++) {
    const c = cmdline.charCodeAt(i);
    if (c === 0 || c > 0x7e) {
      throw new BootLayoutError('ERR_BOOT_CMDLINE', `kernel command line has character code ${c} at index ${i}; use printable ASCII only`);
    }
    bytes[i] = c;
  }
  return bytes;
}

/**
 * Writes `cmdline` and its NUL at CMDLINE_START. `maxLength` is the longest line (without the NUL) the kernel
 * accepts; the buffer's own size also applies. Returns where it was written.
 */
export function writeCmdline(mem: GuestMemory, cmdline: string, maxLength = CMDLINE_MAX_SIZE - 1): Gpa {
  const bytes = encodeCmdline(cmdline);
  const limit = Math.min(maxLength, CMDLINE_MAX_SIZE - 1);
  if (bytes.length > limit) {
    throw new BootLayoutError('ERR_BOOT_CMDLINE', `kernel command line is ${bytes.length} bytes but at most ${limit} fit; shorten it`);
  }
  mem.write(CMDLINE_START, bytes);
  mem.writeU8(CMDLINE_START + bytes.length, 0);
  return gpa(CMDLINE_START);
}
