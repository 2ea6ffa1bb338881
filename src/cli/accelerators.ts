// Faster implementations of the pure state layer's checksum and base64 codec, installed once per
// process: the addon's CRC-32C and Node's base64. Results are the same as the portable code's (the
// tests compare them); only the time differs, which matters inside a hot swap's pause window.

import { useBase64Implementation } from '../state/base64.js';
import { useCrc32cImplementation } from '../state/crc32c.js';
import { nativeCrc32c } from '../sys/checksum.js';

/** Canonical padded base64 through Node's codec: a string is accepted only if it re-encodes to itself. */
export const nodeBase64 = {
  encode: (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
  decode: (s: string): Uint8Array | null => {
    const buf = Buffer.from(s, 'base64');
    if (buf.toString('base64') !== s) return null;
    return new Uint8Array(buf);
  },
};

let done = false;

export function installAccelerators(): void {
  if (done) return;
  done = true;
  try {
    nativeCrc32c(new Uint8Array(0));
    useCrc32cImplementation(nativeCrc32c);
  } catch {
    // no addon (a broken build): the portable CRC works, only slower
  }
  useBase64Implementation(nodeBase64);
}
