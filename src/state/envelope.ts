// The binary envelope around every piece of saved state: platform records now, VM state in the
// hot swap's handover later. It carries a magic, a format version, the kind of content, a length
// and a CRC-32C, and rejects anything malformed, truncated, oversized or outside this build's
// window. It knows nothing about what the sections mean; see tree.ts for the content model.

import { crc32c } from './crc32c.js';
import { StateFormatError } from './errors.js';
import { type StateTree, treeFromJson, treeToJson } from './tree.js';
import { decodeUtf8, encodeUtf8 } from './utf8.js';
import { decodeBinaryTree, encodeBinaryTree } from './binary-tree.js';

/** What an envelope holds. Numeric, with 0 = Invalid so a zeroed header is never valid. Values are forever. */
export enum StateKind {
  Invalid = 0,
  PlatformRecord = 1,
  /** Reserved for the hot swap's per-VM state. */
  VmState = 2,
  VmDefinition = 3,
}

const KNOWN_KINDS: ReadonlySet<number> = new Set([StateKind.PlatformRecord, StateKind.VmState, StateKind.VmDefinition]);

/** ASCII "SWAPVSR\0". */
export const STATE_MAGIC: Uint8Array = new Uint8Array([0x53, 0x57, 0x41, 0x50, 0x56, 0x53, 0x52, 0x00]);
/**
 * The newest format this build reads and writes. Format 1: the payload is JSON, blobs in base64.
 * Format 2: the same content in binary (binary-tree.ts), blobs as they are.
 */
export const CURRENT_FORMAT_VERSION: number = 2;
/** The oldest format this build still reads and writes. Raise it only after no supported peer writes older ones. */
export const MIN_READABLE_FORMAT_VERSION: number = 1;
/**
 * What this build writes unless it knows its reader takes newer: records, definitions and the
 * handover's first message go to readers whose window is not known yet, possibly the previous version.
 */
export const COMPAT_FORMAT_VERSION: number = 1;

/** The newest format both this build and a peer reading `peer` [lo, hi] know; undefined if none. */
export function newestCommonFormat(peer: readonly [number, number]): number | undefined {
  const v = Math.min(CURRENT_FORMAT_VERSION, peer[1]);
  return v >= Math.max(MIN_READABLE_FORMAT_VERSION, peer[0]) ? v : undefined;
}
/** Flag bits this build understands (none yet); any other bit means a newer writer. */
const KNOWN_FLAGS = 0;

// Envelope layout, little-endian, 32-byte header then the payload:
//   offset  width  field
//   0       8      magic "SWAPVSR\0"
//   8       2      u16 format version
//   10      2      u16 kind (StateKind)
//   12      4      u32 flags (0 in format 1)
//   16      8      u64 payload length in bytes
//   24      4      u32 CRC-32C (Castagnoli) of the payload
//   28      4      u32 reserved, written as 0 and ignored on read
//   32      n      payload: format 1: UTF-8 JSON of { "sections": { <id>: { "v": n, "f": { ... } } } }
//                           format 2: the same sections in binary; see binary-tree.ts
export const ENVELOPE_HEADER_BYTES = 32;

/** Default cap on a whole envelope; a platform record with DMI blobs stays far below it. */
export const DEFAULT_MAX_STATE_BYTES = 64 * 1024 * 1024;

export interface DecodeEnvelopeOptions {
  /** The kind the caller is prepared to read; anything else is ERR_STATE_KIND. */
  expectKind: StateKind;
  /** Upper bound on the whole envelope, header included. Defaults to DEFAULT_MAX_STATE_BYTES. */
  maxBytes?: number;
}

export interface DecodedEnvelope {
  kind: StateKind;
  formatVersion: number;
  content: StateTree;
}

export function readableVersionsText(): string {
  return MIN_READABLE_FORMAT_VERSION === CURRENT_FORMAT_VERSION
    ? `format version ${CURRENT_FORMAT_VERSION}`
    : `format versions ${MIN_READABLE_FORMAT_VERSION}..${CURRENT_FORMAT_VERSION}`;
}

export function encodeEnvelope(kind: StateKind, content: StateTree, formatVersion = COMPAT_FORMAT_VERSION): Uint8Array {
  if (!KNOWN_KINDS.has(kind)) throw new StateFormatError('ERR_STATE_KIND', `cannot write state of kind ${kind}; use a StateKind other than Invalid`);
  if (!Number.isInteger(formatVersion) || formatVersion < MIN_READABLE_FORMAT_VERSION || formatVersion > CURRENT_FORMAT_VERSION) {
    throw new StateFormatError('ERR_STATE_VERSION', `cannot write state format ${formatVersion}; this build writes ${readableVersionsText()}`);
  }
  const payload = formatVersion === 1 ? encodeUtf8(JSON.stringify(treeToJson(content))) : encodeBinaryTree(content);
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + payload.length);
  const v = new DataView(out.buffer);
  out.set(STATE_MAGIC, 0);
  v.setUint16(8, formatVersion, true);
  v.setUint16(10, kind, true);
  v.setUint32(12, 0, true);
  v.setBigUint64(16, BigInt(payload.length), true);
  v.setUint32(24, crc32c(payload), true);
  v.setUint32(28, 0, true);
  out.set(payload, ENVELOPE_HEADER_BYTES);
  return out;
}

function kindName(kind: number): string {
  return KNOWN_KINDS.has(kind) ? StateKind[kind] : `unknown kind ${kind}`;
}

/** Checks magic, version, kind, flags and lengths; returns the payload length. */
function checkHeader(bytes: Uint8Array, opts: DecodeEnvelopeOptions, maxBytes: number): number {
  const magicLen = Math.min(bytes.length, STATE_MAGIC.length);
  for (let i = 0; i < magicLen; i++) {
    if (bytes[i] !== STATE_MAGIC[i]) {
      throw new StateFormatError('ERR_STATE_MAGIC', 'not swapvisor state: the file does not start with "SWAPVSR\\0"; check that the right file was given');
    }
  }
  if (bytes.length < ENVELOPE_HEADER_BYTES) {
    throw new StateFormatError('ERR_STATE_TRUNCATED', `swapvisor state is truncated: ${bytes.length} bytes, shorter than the ${ENVELOPE_HEADER_BYTES}-byte header; the writer was interrupted or the copy is incomplete`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(8, true);
  if (version < MIN_READABLE_FORMAT_VERSION || version > CURRENT_FORMAT_VERSION) {
    const which = version > CURRENT_FORMAT_VERSION ? 'a newer swapvisor' : 'an older swapvisor';
    throw new StateFormatError('ERR_STATE_VERSION', `state format version ${version} was written by ${which}; this build reads ${readableVersionsText()}; use a swapvisor build whose window includes ${version}`);
  }
  const kind = v.getUint16(10, true);
  if (kind !== opts.expectKind) {
    throw new StateFormatError('ERR_STATE_KIND', `expected ${kindName(opts.expectKind)} state but this holds ${kindName(kind)}; check that the right file was given`);
  }
  const flags = v.getUint32(12, true);
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new StateFormatError('ERR_STATE_VERSION', `state uses flags 0x${flags.toString(16)} that this build does not know (it reads ${readableVersionsText()} without flags); it was written by a newer swapvisor`);
  }
  const length = v.getBigUint64(16, true);
  if (length > BigInt(maxBytes - ENVELOPE_HEADER_BYTES)) {
    throw new StateFormatError('ERR_STATE_OVERSIZED', `state payload claims ${length} bytes, over the limit of ${maxBytes - ENVELOPE_HEADER_BYTES}; the header is corrupt or the state is not meant for this reader`);
  }
  const n = Number(length);
  if (bytes.length < ENVELOPE_HEADER_BYTES + n) {
    throw new StateFormatError('ERR_STATE_TRUNCATED', `swapvisor state is truncated: the header promises ${n} payload bytes but only ${bytes.length - ENVELOPE_HEADER_BYTES} follow; the writer was interrupted or the copy is incomplete`);
  }
  if (bytes.length > ENVELOPE_HEADER_BYTES + n) {
    throw new StateFormatError('ERR_STATE_CONTENT', `swapvisor state has ${bytes.length - ENVELOPE_HEADER_BYTES - n} bytes after its payload; the file was appended to or overwritten in place`);
  }
  return n;
}

export function decodeEnvelope(bytes: Uint8Array, opts: DecodeEnvelopeOptions): DecodedEnvelope {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_STATE_BYTES;
  if (bytes.length > maxBytes) {
    throw new StateFormatError('ERR_STATE_OVERSIZED', `state is ${bytes.length} bytes, over the limit of ${maxBytes}; it is not meant for this reader or is corrupt`);
  }
  const n = checkHeader(bytes, opts, maxBytes);
  const payload = bytes.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + n);
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(24, true);
  const actual = crc32c(payload);
  if (stored !== actual) {
    throw new StateFormatError('ERR_STATE_CHECKSUM', `state checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)}): the bytes were damaged after writing; restore them from the source or capture them again`);
  }
  const version = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(8, true);
  if (version >= 2) return { kind: opts.expectKind, formatVersion: version, content: decodeBinaryTree(payload) };
  const text = decodeUtf8(payload);
  if (text === null) throw new StateFormatError('ERR_STATE_CONTENT', 'state payload is not valid UTF-8 although its checksum matches: it was written by a broken writer; capture it again');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new StateFormatError('ERR_STATE_CONTENT', 'state payload is not valid JSON although its checksum matches: it was written by a broken writer; capture it again', { cause: e });
  }
  return { kind: opts.expectKind, formatVersion: version, content: treeFromJson(json) };
}
