// The handover protocol between instance A (the old version) and instance B (the new one): framing,
// message types and their bodies. Pure: it turns messages into packets and back, and rejects
// anything malformed, truncated, oversized, out of order or from an unknown version with a clear
// error. See docs/hot-swap.md for the sequence.
//
// Layout of one frame (one SOCK_SEQPACKET packet), little-endian:
//   0  u32 magic 0x4f485653 ("SVHO")
//   4  u16 protocol version
//   6  u16 message type (0 is Invalid)
//   8  u32 message id (every fragment of a message carries it)
//   12 u16 fragment index (0, 1, ...)
//   14 u16 flags (bit 0: MORE fragments follow; every other bit must be 0)
//   16 u32 fragment payload length
//   20 u32 CRC-32C of header bytes 0-19 followed by the fragment payload, so a damaged type, id,
//          index or flags field fails the checksum as a damaged payload does
//   24 payload bytes
// A message's payload (all fragments joined) is: u32 JSON length | JSON body (UTF-8) | binary blob.

import { crc32c } from '../state/crc32c.js';
import { decodeUtf8, encodeUtf8 } from '../state/utf8.js';

export const HANDOVER_MAGIC = 0x4f485653;
export const PROTOCOL_VERSION = 1;
/** The protocol versions this build speaks. */
export const PROTOCOL_WINDOW: readonly [number, number] = [1, 1];
/**
 * Optional messages this build understands, announced in READY. A sends an optional message only if
 * B announced it, so an instance can swap to a build one version older or newer that lacks it.
 */
export const FEATURES = ['imminent', 'console-history', 'canary', 'console-clients'] as const;
export type Feature = (typeof FEATURES)[number];
export const FRAME_HEADER_BYTES = 24;
export const MAX_FRAGMENT_PAYLOAD = 60 * 1024;
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
const FLAG_MORE = 1;

export enum MessageType {
  Invalid = 0,
  Hello = 1,
  Ready = 2,
  PrepareVm = 3,
  ShellReady = 4,
  VmState = 5,
  VmRunning = 6,
  VmFailed = 7,
  DiscardVm = 8,
  Retire = 9,
  Retired = 10,
  Abort = 11,
  /** A asks B to send a moved VM back (rollback); B answers with VmState, A with VmRunning. */
  ReturnVm = 12,
  /** A → B after a VM runs in B: console output from between PrepareVm and the pause. */
  ConsoleHistory = 13,
  /** A → B: "about to pause {name}": B keeps its event loop hot until the state arrives. */
  Imminent = 14,
  /** B → A: "awake and waiting for {name}": A pauses only once B's loop is hot. */
  ImminentAck = 15,
  /** A → B: run a clone of {name} isolated for a while (state blob, memfd mapped copy-on-write). */
  CanaryStart = 16,
  /** B → A: how the clone did; the clone is gone by then. */
  CanaryResult = 17,
  /** B → A: the clone's private copy of the RAM is made; A may resume the original. */
  CanaryMapped = 18,
  /** A → B after a VM runs in B: the console connections attached to it, as fds. */
  ConsoleClients = 19,
}

export type HandoverErrorCode = 'ERR_HANDOVER_MAGIC' | 'ERR_HANDOVER_VERSION' | 'ERR_HANDOVER_TYPE' | 'ERR_HANDOVER_CHECKSUM'
  | 'ERR_HANDOVER_TRUNCATED' | 'ERR_HANDOVER_OVERSIZED' | 'ERR_HANDOVER_SEQUENCE' | 'ERR_HANDOVER_BODY' | 'ERR_HANDOVER_FLAGS';

export class HandoverError extends Error {
  override readonly name = 'HandoverError';

  constructor(readonly code: HandoverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The checksum of a frame: header bytes 0-19 (everything but the checksum field), then the payload. */
function frameChecksum(header: Uint8Array, part: Uint8Array): number {
  return crc32c(part, crc32c(header.subarray(0, 20)));
}

export interface Message {
  type: MessageType;
  body: Record<string, unknown>;
  blob: Uint8Array;
}

export function encodeMessage(id: number, m: Message): Uint8Array[] {
  const json = encodeUtf8(JSON.stringify(m.body));
  const payload = new Uint8Array(4 + json.byteLength + m.blob.byteLength);
  new DataView(payload.buffer).setUint32(0, json.byteLength, true);
  payload.set(json, 4);
  payload.set(m.blob, 4 + json.byteLength);
  if (payload.byteLength > MAX_MESSAGE_BYTES) throw new HandoverError('ERR_HANDOVER_OVERSIZED', `message of ${payload.byteLength} bytes is over ${MAX_MESSAGE_BYTES}`);
  const frames: Uint8Array[] = [];
  for (let off = 0, index = 0; off < payload.byteLength || index === 0; off += MAX_FRAGMENT_PAYLOAD, index++) {
    const part = payload.subarray(off, Math.min(off + MAX_FRAGMENT_PAYLOAD, payload.byteLength));
    const f = new Uint8Array(FRAME_HEADER_BYTES + part.byteLength);
    const v = new DataView(f.buffer);
    v.setUint32(0, HANDOVER_MAGIC, true);
    v.setUint16(4, PROTOCOL_VERSION, true);
    v.setUint16(6, m.type, true);
    v.setUint32(8, id, true);
    v.setUint16(12, index, true);
    v.setUint16(14, off + part.byteLength < payload.byteLength ? FLAG_MORE : 0, true);
    v.setUint32(16, part.byteLength, true);
    f.set(part, FRAME_HEADER_BYTES);
    v.setUint32(20, frameChecksum(f, part), true);
    frames.push(f);
  }
  return frames;
}

/** Reassembles frames into messages, checking every header and checksum. */
export class MessageDecoder {
  private parts: Uint8Array[] = [];
  private size = 0;
  private current: { id: number; type: number; next: number } | undefined;

  /** Feeds one frame; returns a whole message when its last fragment arrives. */
  push(frame: Uint8Array): Message | undefined {
    if (frame.byteLength < FRAME_HEADER_BYTES) throw new HandoverError('ERR_HANDOVER_TRUNCATED', `frame of ${frame.byteLength} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`);
    const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    if (v.getUint32(0, true) !== HANDOVER_MAGIC) throw new HandoverError('ERR_HANDOVER_MAGIC', 'frame does not start with the handover magic: the peer is not a swapvisor instance');
    const version = v.getUint16(4, true);
    if (version < PROTOCOL_WINDOW[0] || version > PROTOCOL_WINDOW[1]) {
      throw new HandoverError('ERR_HANDOVER_VERSION', `peer speaks handover protocol ${version}; this build speaks ${PROTOCOL_WINDOW[0]}-${PROTOCOL_WINDOW[1]}: swap between adjacent versions`);
    }
    const type = v.getUint16(6, true);
    if (type === MessageType.Invalid || !(type in MessageType)) throw new HandoverError('ERR_HANDOVER_TYPE', `unknown message type ${type}`);
    const id = v.getUint32(8, true);
    const index = v.getUint16(12, true);
    const flags = v.getUint16(14, true);
    const more = (flags & FLAG_MORE) !== 0;
    const len = v.getUint32(16, true);
    if (len !== frame.byteLength - FRAME_HEADER_BYTES) throw new HandoverError('ERR_HANDOVER_TRUNCATED', `frame says ${len} payload bytes but carries ${frame.byteLength - FRAME_HEADER_BYTES}`);
    const part = frame.subarray(FRAME_HEADER_BYTES);
    if (frameChecksum(frame, part) !== v.getUint32(20, true)) throw new HandoverError('ERR_HANDOVER_CHECKSUM', `message ${id} fragment ${index} fails its checksum: it was corrupted in transit`);
    if ((flags & ~FLAG_MORE) !== 0) throw new HandoverError('ERR_HANDOVER_FLAGS', `message ${id} fragment ${index} sets unknown flag bits 0x${(flags & ~FLAG_MORE).toString(16)}: the peer speaks an incompatible variant of protocol ${version}`);
    if (this.current ? this.current.id !== id || this.current.type !== type || this.current.next !== index : index !== 0) {
      this.reset();
      throw new HandoverError('ERR_HANDOVER_SEQUENCE', `fragment ${index} of message ${id} arrived out of order`);
    }
    this.size += part.byteLength;
    if (this.size > MAX_MESSAGE_BYTES) {
      this.reset();
      throw new HandoverError('ERR_HANDOVER_OVERSIZED', `message ${id} is over ${MAX_MESSAGE_BYTES} bytes`);
    }
    this.parts.push(part.slice());
    if (more) {
      this.current = { id, type, next: index + 1 };
      return undefined;
    }
    const payload = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) { payload.set(p, off); off += p.byteLength; }
    this.reset();
    return decodePayload(type, payload);
  }

  /** True while a message's fragments are still arriving. */
  get partial(): boolean { return this.current !== undefined; }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.current = undefined;
  }
}

function decodePayload(type: MessageType, payload: Uint8Array): Message {
  if (payload.byteLength < 4) throw new HandoverError('ERR_HANDOVER_TRUNCATED', 'message payload is shorter than its length field');
  const jsonLen = new DataView(payload.buffer, payload.byteOffset).getUint32(0, true);
  if (jsonLen > payload.byteLength - 4) throw new HandoverError('ERR_HANDOVER_TRUNCATED', `message body says ${jsonLen} bytes but only ${payload.byteLength - 4} are there`);
  const text = decodeUtf8(payload.subarray(4, 4 + jsonLen));
  if (text === null) throw new HandoverError('ERR_HANDOVER_BODY', 'message body is not valid UTF-8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HandoverError('ERR_HANDOVER_BODY', `message body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HandoverError('ERR_HANDOVER_BODY', 'message body is not a JSON object');
  // A plain Uint8Array copy, whatever the payload was (a Buffer from the socket, a view): code that
  // reads blobs is compiled for one kind of array, and a second kind costs a recompile in the pause window.
  return { type, body: body as Record<string, unknown>, blob: new Uint8Array(payload.subarray(4 + jsonLen)) };
}

// Body accessors: each names the field and the message when something is missing or of the wrong type.
export function str(m: Message, key: string): string {
  const v = m.body[key];
  if (typeof v !== 'string') throw new HandoverError('ERR_HANDOVER_BODY', `${MessageType[m.type]} message: ${key} must be a string`);
  return v;
}

export function int(m: Message, key: string): number {
  const v = m.body[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new HandoverError('ERR_HANDOVER_BODY', `${MessageType[m.type]} message: ${key} must be an integer`);
  return v;
}

export function range(m: Message, key: string): [number, number] {
  const v = m.body[key];
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isSafeInteger(x))) throw new HandoverError('ERR_HANDOVER_BODY', `${MessageType[m.type]} message: ${key} must be [min, max]`);
  return [v[0] as number, v[1] as number];
}
