// The content model of saved state: a tree of sections keyed by stable ids ("platform/cpus",
// "vcpus/0"), each with its own version and named fields. Values are JSON-compatible, plus byte
// blobs, which travel as { "$b64": "..." }. This module converts between that model and plain
// JSON values; it does not know about the binary envelope (envelope.ts) or any particular section.

import { decodeBase64, encodeBase64 } from './base64.js';
import { StateFormatError } from './errors.js';

export type StateValue = null | boolean | number | string | Uint8Array | readonly StateValue[] | StateObject;

/** Named fields. Serialized field names are forever: choose them carefully. */
export interface StateObject {
  readonly [field: string]: StateValue;
}

/** One section: `v` is the section's own version, `f` its named fields. */
export interface StateSection {
  readonly v: number;
  readonly f: StateObject;
}

/** Sections keyed by stable ids. Readers skip ids they do not know. */
export interface StateTree {
  readonly sections: { readonly [id: string]: StateSection };
}

/** The one reserved field name: an object whose only field is this holds a byte blob. */
export const BLOB_TAG = '$b64';

/** Nesting deeper than this is rejected on both sides; real state is a few levels deep. */
export const MAX_STATE_DEPTH = 64;

export const MAX_SECTION_VERSION = 0xffff;

/** Sets an own property, even for the key "__proto__", without touching the prototype. */
export function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

function contentError(path: string, what: string): StateFormatError {
  return new StateFormatError('ERR_STATE_CONTENT', `state content at ${path || '<root>'}: ${what}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** StateValue → JSON value; throws ERR_STATE_CONTENT for values JSON cannot carry faithfully. */
export function stateValueToJson(v: StateValue, path = '', depth = 0): unknown {
  if (depth > MAX_STATE_DEPTH) throw contentError(path, `nested deeper than ${MAX_STATE_DEPTH} levels; flatten the state`);
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw contentError(path, `${v} cannot be saved; store a finite number or a string`);
    return Object.is(v, -0) ? 0 : v;
  }
  if (v instanceof Uint8Array) return { [BLOB_TAG]: encodeBase64(v) };
  if (Array.isArray(v)) return v.map((x: StateValue, i) => stateValueToJson(x, `${path}[${i}]`, depth + 1));
  if (!isPlainObject(v)) throw contentError(path, `a ${typeof v} cannot be saved`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === BLOB_TAG) throw contentError(path, `the field name ${BLOB_TAG} is reserved for byte blobs`);
    if (x === undefined) throw contentError(`${path}.${k}`, 'undefined cannot be saved; omit the field or use null');
    setOwn(out, k, stateValueToJson(x, `${path}.${k}`, depth + 1));
  }
  return out;
}

/** JSON value (from JSON.parse) → StateValue; blobs are revived, anything malformed is ERR_STATE_CONTENT. */
export function stateValueFromJson(j: unknown, path = '', depth = 0): StateValue {
  if (depth > MAX_STATE_DEPTH) throw contentError(path, `nested deeper than ${MAX_STATE_DEPTH} levels; the file is corrupt`);
  if (j === null || typeof j === 'boolean' || typeof j === 'string' || typeof j === 'number') return j;
  if (Array.isArray(j)) return j.map((x: unknown, i) => stateValueFromJson(x, `${path}[${i}]`, depth + 1));
  if (!isPlainObject(j)) throw contentError(path, `unexpected ${typeof j}`);
  if (Object.prototype.hasOwnProperty.call(j, BLOB_TAG)) {
    const b64 = j[BLOB_TAG];
    const bytes = typeof b64 === 'string' && Object.keys(j).length === 1 ? decodeBase64(b64) : null;
    if (!bytes) throw contentError(path, `a byte blob must be { "${BLOB_TAG}": "<canonical base64>" } and nothing else`);
    return bytes;
  }
  const out: Record<string, StateValue> = {};
  for (const [k, x] of Object.entries(j)) setOwn(out, k, stateValueFromJson(x, `${path}.${k}`, depth + 1));
  return out;
}

export function treeToJson(tree: StateTree): unknown {
  const sections: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(tree.sections)) {
    if (!Number.isInteger(s.v) || s.v < 1 || s.v > MAX_SECTION_VERSION) {
      throw contentError(id, `section version ${s.v} must be an integer in 1..${MAX_SECTION_VERSION}`);
    }
    if (!isPlainObject(s.f)) throw contentError(id, 'section fields must be an object of named fields');
    setOwn(sections, id, { v: s.v, f: stateValueToJson(s.f, id) });
  }
  return { sections };
}

/** Validates the shape { sections: { id: { v, f } } }; unknown keys at the top and in sections are ignored. */
export function treeFromJson(j: unknown): StateTree {
  if (!isPlainObject(j) || !isPlainObject(j.sections)) throw contentError('', 'expected an object with a "sections" object');
  const sections: Record<string, StateSection> = {};
  for (const [id, s] of Object.entries(j.sections)) {
    if (!isPlainObject(s)) throw contentError(id, 'a section must be an object { v, f }');
    const v = s.v;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_SECTION_VERSION) {
      throw contentError(id, `section version must be an integer in 1..${MAX_SECTION_VERSION}, got ${JSON.stringify(v)}`);
    }
    const f = stateValueFromJson(s.f, id);
    if (!isPlainObject(f)) throw contentError(id, 'section fields "f" must be an object of named fields');
    setOwn(sections, id, { v, f: f as StateObject });
  }
  return { sections };
}
