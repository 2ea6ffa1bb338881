// Standard base64 (RFC 4648 section 4, with padding) for byte blobs inside state content.
// The pure layer has no Buffer or atob, so this is a small codec of its own. Decoding is strict:
// wrong length, characters outside the alphabet or non-zero padding bits are rejected (return null).

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

const DECODE: Int16Array = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

export interface Base64Implementation {
  encode(bytes: Uint8Array): string;
  /** Must accept exactly what decodeBase64Portable accepts. */
  decode(s: string): Uint8Array | null;
}

let installed: Base64Implementation | undefined;

/** Installs a faster codec (same results, same strictness), or goes back to this module's. */
export function useBase64Implementation(impl: Base64Implementation | undefined): void {
  installed = impl;
}

export function encodeBase64(bytes: Uint8Array): string {
  return installed ? installed.encode(bytes) : encodeBase64Portable(bytes);
}

/** The bytes `s` encodes, or null if `s` is not canonical padded base64. */
export function decodeBase64(s: string): Uint8Array | null {
  return installed ? installed.decode(s) : decodeBase64Portable(s);
}

export function encodeBase64Portable(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += `${ALPHABET[n >>> 18]}${ALPHABET[(n >>> 12) & 63]}==`;
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += `${ALPHABET[n >>> 18]}${ALPHABET[(n >>> 12) & 63]}${ALPHABET[(n >>> 6) & 63]}=`;
  }
  return out;
}

function sextet(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? DECODE[c] : -1;
}

export function decodeBase64Portable(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const tail = i + 4 === s.length ? pad : 0;
    const a = sextet(s, i);
    const b = sextet(s, i + 1);
    const c = tail === 2 ? 0 : sextet(s, i + 2);
    const d = tail >= 1 ? 0 : sextet(s, i + 3);
    if (a < 0 || b < 0 || c < 0 || d < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    // Canonical form: the bits that padding stands for must be zero.
    if ((tail === 2 && (n & 0xffff) !== 0) || (tail === 1 && (n & 0xff) !== 0)) return null;
    out[o++] = n >>> 16;
    if (tail < 2) out[o++] = (n >>> 8) & 0xff;
    if (tail < 1) out[o++] = n & 0xff;
  }
  return out;
}
