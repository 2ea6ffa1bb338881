// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the state envelope.
// Table-driven, one byte at a time, in this pure module; a process may install a faster one with
// the same results (the CPU's crc32 instruction, see cli/accelerators.ts): a hot swap checks every
// state byte four times inside the pause window. Reference: RFC 3720 appendix B.4; check value of
// "123456789" is 0xE3069283.

const CASTAGNOLI_REFLECTED = 0x82f63b78;

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_REFLECTED : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export type Crc32cImplementation = (bytes: Uint8Array, crc: number) => number;

let installed: Crc32cImplementation | undefined;

/** Installs a faster implementation (it must give the same results), or goes back to this one. */
export function useCrc32cImplementation(impl: Crc32cImplementation | undefined): void {
  installed = impl;
}

/** CRC-32C of `bytes`; pass a previous result as `crc` to continue over split input. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  return installed ? installed(bytes, crc) : crc32cPortable(bytes, crc);
}

/** The table-driven implementation, always available. */
export function crc32cPortable(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
