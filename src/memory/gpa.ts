// Guest physical addresses as a branded type, so that a host offset or a plain length
// cannot be passed where a guest address is meant. Pure: no Node imports.

declare const gpaBrand: unique symbol;

/** A guest physical address. Always a non-negative safe integer (guests here are < 2^53 bytes). */
export type Gpa = number & { readonly [gpaBrand]: true };

export function gpa(value: number): Gpa {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`not a guest physical address: ${value}`);
  }
  return value as Gpa;
}

export function gpaAdd(base: Gpa, offset: number): Gpa {
  return gpa(base + offset);
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
