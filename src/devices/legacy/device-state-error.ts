// The error every legacy device's `restore` throws on malformed saved state, and the small
// field readers that produce it. Saved state arrives as decoded, untrusted data (it may come
// from another swapvisor version or a corrupted stream), so each field is checked before use.

/** Raised by a device's static `restore` when its saved state is malformed. */
export class DeviceStateError extends Error {
  readonly code = 'ERR_DEVICE_STATE';
  constructor(
    readonly device: string,
    readonly field: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${device} state field "${field}" ${problem}; the saved state is corrupt or from an incompatible ` +
        `writer: restore from a state saved by a compatible swapvisor version`,
      options,
    );
    this.name = 'DeviceStateError';
  }
}

/** The state as a plain record; throws unless it is a non-null, non-array object. */
export function readRecord(device: string, state: unknown): Record<string, unknown> {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new DeviceStateError(device, '(root)', 'is not an object');
  }
  return state as Record<string, unknown>;
}

/** An integer field in [min, max]. */
export function readInt(
  device: string,
  record: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DeviceStateError(device, field, `must be an integer in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

/** A byte field (an integer in [0, 255]). */
export function readByte(device: string, record: Record<string, unknown>, field: string): number {
  return readInt(device, record, field, 0, 0xff);
}

/** A register field whose set bits must all lie within `mask`. */
export function readBits(device: string, record: Record<string, unknown>, field: string, mask: number): number {
  const value = readByte(device, record, field);
  if (value & ~mask) {
    throw new DeviceStateError(device, field, `has bits outside 0x${mask.toString(16)} set: 0x${value.toString(16)}`);
  }
  return value;
}

export function readBool(device: string, record: Record<string, unknown>, field: string): boolean {
  const value = record[field];
  if (typeof value !== 'boolean') {
    throw new DeviceStateError(device, field, `must be a boolean, got ${describe(value)}`);
  }
  return value;
}

/** An array of bytes of length in [minLength, maxLength], copied into a fresh Uint8Array. */
export function readBytes(
  device: string,
  record: Record<string, unknown>,
  field: string,
  minLength: number,
  maxLength: number,
): Uint8Array {
  const value = record[field];
  if (!Array.isArray(value)) {
    throw new DeviceStateError(device, field, `must be an array of bytes, got ${describe(value)}`);
  }
  if (value.length < minLength || value.length > maxLength) {
    const want = minLength === maxLength ? `${minLength}` : `${minLength} to ${maxLength}`;
    throw new DeviceStateError(device, field, `must hold ${want} bytes, got ${value.length}`);
  }
  const bytes = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const b: unknown = value[i];
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 0xff) {
      throw new DeviceStateError(device, `${field}[${i}]`, `must be an integer in [0, 255], got ${describe(b)}`);
    }
    bytes[i] = b;
  }
  return bytes;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return String(value);
  return `a ${typeof value}`;
}
