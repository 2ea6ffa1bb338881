// Tolerant readers for state sections: a missing field yields the caller's default, unknown
// fields and sections are simply never asked for, and a field present with the wrong type is
// ERR_STATE_CONTENT (that is corruption, not an older or newer writer).

import { StateFormatError } from './errors.js';
import type { StateObject, StateTree, StateValue } from './tree.js';

function typeName(v: StateValue): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function isObject(v: StateValue): v is StateObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Named fields at `path` (a section's `f`, or an object nested inside it). */
export class FieldReader {
  constructor(readonly path: string, private readonly fields: StateObject) {}

  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.fields, name);
  }

  /** The raw value, or undefined when the field is missing. */
  raw(name: string): StateValue | undefined {
    return this.has(name) ? this.fields[name] : undefined;
  }

  private wrongType(name: string, want: string, got: StateValue): StateFormatError {
    return new StateFormatError('ERR_STATE_CONTENT', `state field ${this.path}.${name} should be ${want} but is ${typeName(got)}; the state is corrupt, capture it again`);
  }

  number(name: string, dflt: number): number {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (typeof v !== 'number') throw this.wrongType(name, 'a number', v);
    return v;
  }

  /** A number or null; null is a deliberate "unknown", not a missing field. */
  numberOrNull(name: string, dflt: number | null): number | null {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (v !== null && typeof v !== 'number') throw this.wrongType(name, 'a number or null', v);
    return v;
  }

  string(name: string, dflt: string): string {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (typeof v !== 'string') throw this.wrongType(name, 'a string', v);
    return v;
  }

  stringOrNull(name: string, dflt: string | null): string | null {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (v !== null && typeof v !== 'string') throw this.wrongType(name, 'a string or null', v);
    return v;
  }

  boolean(name: string, dflt: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw this.wrongType(name, 'a boolean', v);
    return v;
  }

  bytes(name: string, dflt: Uint8Array): Uint8Array {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (!(v instanceof Uint8Array)) throw this.wrongType(name, 'bytes', v);
    return v;
  }

  numbers(name: string, dflt: readonly number[]): number[] {
    const v = this.raw(name);
    if (v === undefined) return [...dflt];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw this.wrongType(name, 'an array of numbers', v);
    return [...(v as number[])];
  }

  strings(name: string, dflt: readonly string[]): string[] {
    const v = this.raw(name);
    if (v === undefined) return [...dflt];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw this.wrongType(name, 'an array of strings', v);
    return [...(v as string[])];
  }

  /** A nested object; a missing one reads as empty, so its fields take their defaults. */
  object(name: string): FieldReader {
    const v = this.raw(name);
    if (v === undefined) return new FieldReader(`${this.path}.${name}`, {});
    if (!isObject(v)) throw this.wrongType(name, 'an object', v);
    return new FieldReader(`${this.path}.${name}`, v);
  }

  /** An array of objects, each as a reader; missing reads as empty. */
  objects(name: string): FieldReader[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.wrongType(name, 'an array of objects', v);
    return (v as readonly StateValue[]).map((x, i) => {
      if (!isObject(x)) throw this.wrongType(`${name}[${i}]`, 'an object', x);
      return new FieldReader(`${this.path}.${name}[${i}]`, x);
    });
  }
}

/** One section's fields plus its version. */
export class SectionReader extends FieldReader {
  constructor(readonly id: string, readonly version: number, fields: StateObject) {
    super(id, fields);
  }
}

/** The section `id`, or undefined if this writer did not include it (the caller picks the default). */
export function readSection(tree: StateTree, id: string): SectionReader | undefined {
  if (!Object.prototype.hasOwnProperty.call(tree.sections, id)) return undefined;
  const s = tree.sections[id];
  return new SectionReader(id, s.v, s.f);
}

/** Ids of sections this reader was not written for, for diagnostics ("skipped: …"). */
export function unknownSections(tree: StateTree, known: readonly string[]): string[] {
  const k = new Set(known);
  return Object.keys(tree.sections).filter((id) => !k.has(id)).sort();
}
