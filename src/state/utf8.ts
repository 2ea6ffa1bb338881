// A strict UTF-8 codec for the pure state layer, which has no TextEncoder/TextDecoder (lib ES2022
// only, no DOM or Node types). Encoding replaces lone surrogates with U+FFFD like TextEncoder;
// decoding rejects malformed input (overlong forms, surrogates, > U+10FFFF, cut sequences) by
// returning null, because a state payload with broken text is corrupt, not something to repair.

/** The host's WHATWG text codecs where there are some (Node, browsers): the same results, far faster. */
interface HostTextDecoder { decode(bytes: Uint8Array): string }
interface HostTextEncoder { encode(s: string): Uint8Array }
const host = globalThis as unknown as {
  TextDecoder?: new (label: string, opts: { fatal: boolean; ignoreBOM: boolean }) => HostTextDecoder;
  TextEncoder?: new () => HostTextEncoder;
};
const hostDecoder = host.TextDecoder ? new host.TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) : undefined;
const hostEncoder = host.TextEncoder ? new host.TextEncoder() : undefined;

export function encodeUtf8(s: string): Uint8Array {
  if (hostEncoder) return hostEncoder.encode(s);
  return encodeUtf8Portable(s);
}

/** The portable encoder (also what hosts without TextEncoder use). */
export function encodeUtf8Portable(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) {
      out[o++] = cp;
    } else if (cp < 0x800) {
      out[o++] = 0xc0 | (cp >> 6);
      out[o++] = 0x80 | (cp & 63);
    } else if (cp < 0x10000) {
      out[o++] = 0xe0 | (cp >> 12);
      out[o++] = 0x80 | ((cp >> 6) & 63);
      out[o++] = 0x80 | (cp & 63);
    } else {
      out[o++] = 0xf0 | (cp >> 18);
      out[o++] = 0x80 | ((cp >> 12) & 63);
      out[o++] = 0x80 | ((cp >> 6) & 63);
      out[o++] = 0x80 | (cp & 63);
    }
  }
  return out.slice(0, o);
}

/** Length and minimum code point of a sequence that starts with lead byte `b`, or null. */
function sequenceOf(b: number): { len: number; min: number; bits: number } | null {
  if (b < 0x80) return { len: 1, min: 0, bits: b };
  if (b >= 0xc2 && b <= 0xdf) return { len: 2, min: 0x80, bits: b & 0x1f };
  if (b >= 0xe0 && b <= 0xef) return { len: 3, min: 0x800, bits: b & 0x0f };
  if (b >= 0xf0 && b <= 0xf4) return { len: 4, min: 0x10000, bits: b & 0x07 };
  return null;
}

export function decodeUtf8(bytes: Uint8Array): string | null {
  if (hostDecoder) {
    try {
      return hostDecoder.decode(bytes);
    } catch {
      return null; // fatal: malformed UTF-8
    }
  }
  return decodeUtf8Portable(bytes);
}

/** The portable strict decoder (also what hosts without TextDecoder use). */
export function decodeUtf8Portable(bytes: Uint8Array): string | null {
  const parts: string[] = [];
  let units: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const seq = sequenceOf(bytes[i]);
    if (!seq || i + seq.len > bytes.length) return null;
    let cp = seq.bits;
    for (let k = 1; k < seq.len; k++) {
      const c = bytes[i + k];
      if ((c & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (c & 63);
    }
    if (cp < seq.min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
    if (cp >= 0x10000) {
      units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    } else {
      units.push(cp);
    }
    i += seq.len;
    if (units.length >= 4096) {
      parts.push(String.fromCharCode(...units));
      units = [];
    }
  }
  parts.push(String.fromCharCode(...units));
  return parts.join('');
}
