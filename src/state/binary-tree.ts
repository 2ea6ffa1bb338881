// The payload of format 2: the same content model as format 1 (sections keyed by stable ids, each
// with a version and named fields; tree.ts), laid out in binary so that byte blobs travel as they
// are. Format 1 wraps every blob in base64 inside JSON; a hot swap's pause window then spends most
// of its time encoding and decoding a VM's 13 KB of KVM structs. Here a blob is one copy on write
// and a view, not a copy, on read. Fields that are not blobs are JSON, as in format 1.
//
// Layout, little-endian:
//   u32 section count
//   per section: u16 id length | id (UTF-8) | u16 version (1..65535) | u16 field count
//     per field: u16 name length | name (UTF-8) | u8 type | u32 value length | value
//       type 1: the value is a byte blob; type 2: the value is UTF-8 JSON of a format-1 value
// Every length is checked against what is left; ids and names must be unique and valid UTF-8;
// nothing may follow the last section.

import { StateFormatError } from './errors.js';
import { MAX_SECTION_VERSION, type StateObject, type StateSection, type StateTree, type StateValue, setOwn, stateValueFromJson, stateValueToJson } from './tree.js';
import { decodeUtf8, encodeUtf8 } from './utf8.js';

const FIELD_BLOB = 1;
const FIELD_JSON = 2;
const MAX_NAME_BYTES = 0xffff;
const MAX_FIELDS = 0xffff;

function contentError(what: string): StateFormatError {
  return new StateFormatError('ERR_STATE_CONTENT', `state content: ${what}; the file is corrupt or was written by a broken writer`);
}

interface EncodedField { name: Uint8Array; type: number; value: Uint8Array }

export function encodeBinaryTree(tree: StateTree): Uint8Array {
  const parts: Array<{ id: Uint8Array; v: number; fields: EncodedField[] }> = [];
  let size = 4;
  for (const id of Object.keys(tree.sections)) {
    const s: StateSection = tree.sections[id]!;
    if (!Number.isInteger(s.v) || s.v < 1 || s.v > MAX_SECTION_VERSION) throw contentError(`section ${id} has version ${s.v}, not an integer in 1..${MAX_SECTION_VERSION}`);
    const idBytes = checkedName(id, `section id`);
    const fields: EncodedField[] = [];
    size += 2 + idBytes.length + 4;
    for (const name of Object.keys(s.f)) {
      const x: StateValue = s.f[name]!;
      if (x === undefined) throw contentError(`${id}.${name} is undefined; omit the field or use null`);
      const value = x instanceof Uint8Array ? x : encodeUtf8(JSON.stringify(stateValueToJson(x, `${id}.${name}`)));
      const f = { name: checkedName(name, `field name in ${id}`), type: x instanceof Uint8Array ? FIELD_BLOB : FIELD_JSON, value };
      fields.push(f);
      size += 2 + f.name.length + 1 + 4 + value.length;
    }
    if (fields.length > MAX_FIELDS) throw contentError(`section ${id} has ${fields.length} fields, over ${MAX_FIELDS}`);
    parts.push({ id: idBytes, v: s.v, fields });
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, parts.length, true);
  let o = 4;
  const putName = (b: Uint8Array): void => { dv.setUint16(o, b.length, true); out.set(b, o + 2); o += 2 + b.length; };
  for (const p of parts) {
    putName(p.id);
    dv.setUint16(o, p.v, true);
    dv.setUint16(o + 2, p.fields.length, true);
    o += 4;
    for (const f of p.fields) {
      putName(f.name);
      dv.setUint8(o, f.type);
      dv.setUint32(o + 1, f.value.length, true);
      out.set(f.value, o + 5);
      o += 5 + f.value.length;
    }
  }
  return out;
}

function checkedName(s: string, what: string): Uint8Array {
  const b = encodeUtf8(s);
  if (b.length > MAX_NAME_BYTES) throw contentError(`a ${what} must be at most ${MAX_NAME_BYTES} bytes of UTF-8, got ${b.length}`);
  return b;
}

/** A cursor over the payload that refuses to read past its end. */
class Reader {
  private o = 0;
  private readonly dv: DataView;
  constructor(private readonly b: Uint8Array) { this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength); }
  get left(): number { return this.b.length - this.o; }
  private need(n: number, what: string): void {
    if (n > this.left) throw new StateFormatError('ERR_STATE_TRUNCATED', `state content is cut short: ${what} needs ${n} bytes, ${this.left} are left; the writer was broken`);
  }
  u8(what: string): number { this.need(1, what); return this.dv.getUint8(this.o++); }
  u16(what: string): number { this.need(2, what); const v = this.dv.getUint16(this.o, true); this.o += 2; return v; }
  u32(what: string): number { this.need(4, what); const v = this.dv.getUint32(this.o, true); this.o += 4; return v; }
  bytes(n: number, what: string): Uint8Array { this.need(n, what); const v = this.b.subarray(this.o, this.o + n); this.o += n; return v; }
  name(what: string): string {
    const n = this.u16(`${what} length`);
    const s = decodeUtf8(this.bytes(n, what));
    if (s === null) throw contentError(`a ${what} that is not valid UTF-8`);
    return s;
  }
}

/** Blob fields come back as views into `payload`: keep it unchanged while the tree is in use. */
export function decodeBinaryTree(payload: Uint8Array): StateTree {
  const r = new Reader(payload);
  const count = r.u32('the section count');
  // Each section takes at least 6 bytes: a count past that is a lie, refused before any allocation.
  if (count > payload.length / 6) throw contentError(`${count} sections cannot fit in ${payload.length} bytes`);
  const sections: Record<string, StateSection> = {};
  for (let i = 0; i < count; i++) {
    const id = r.name('section id');
    if (Object.prototype.hasOwnProperty.call(sections, id)) throw contentError(`section ${id} appears twice`);
    const v = r.u16(`the version of ${id}`);
    if (v < 1) throw contentError(`section ${id} has version 0`);
    const nFields = r.u16(`the field count of ${id}`);
    const f: Record<string, StateValue> = {};
    for (let j = 0; j < nFields; j++) {
      const name = r.name(`field name in ${id}`);
      if (Object.prototype.hasOwnProperty.call(f, name)) throw contentError(`field ${id}.${name} appears twice`);
      const type = r.u8(`the type of ${id}.${name}`);
      const value = r.bytes(r.u32(`the length of ${id}.${name}`), `the value of ${id}.${name}`);
      setOwn(f, name, type === FIELD_BLOB ? value : type === FIELD_JSON ? jsonField(value, `${id}.${name}`) : unknownType(type, `${id}.${name}`));
    }
    setOwn(sections, id, { v, f: f as StateObject });
  }
  if (r.left !== 0) throw contentError(`${r.left} bytes follow the last section`);
  return { sections };
}

function jsonField(bytes: Uint8Array, path: string): StateValue {
  const text = decodeUtf8(bytes);
  if (text === null) throw contentError(`${path} is not valid UTF-8`);
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw contentError(`${path} is not valid JSON`);
  }
  return stateValueFromJson(j, path);
}

function unknownType(type: number, path: string): never {
  throw contentError(`${path} has field type ${type}; this build knows 1 (bytes) and 2 (JSON)`);
}
