// CRC-32C computed by the native addon (the CPU's crc32 instruction when it has one). Same
// convention as state/crc32c.ts: pass a previous result to continue over split input.

import { native } from './native.js';

export function nativeCrc32c(bytes: Uint8Array, crc = 0): number {
  return native().crc32c(bytes, crc);
}
