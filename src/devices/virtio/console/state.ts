// The saved state of a virtio-console device: host input not yet taken by the guest (it has no
// receive buffer yet). It travels with the VM, so a hot swap loses no byte in either direction.

import { DeviceStateError, readRecord } from '../../legacy/device-state-error.js';

export interface VirtioConsoleState {
  pendingInput: Uint8Array;
}

export const VIRTIO_CONSOLE_STATE_NAME = 'virtio-console';
/** The most host input the device holds for the guest. */
export const MAX_PENDING_INPUT = 64 * 1024;

export function readVirtioConsoleState(state: unknown): VirtioConsoleState {
  const r = readRecord(VIRTIO_CONSOLE_STATE_NAME, state);
  const p = r.pendingInput;
  if (!(p instanceof Uint8Array) || p.byteLength > MAX_PENDING_INPUT) {
    throw new DeviceStateError(VIRTIO_CONSOLE_STATE_NAME, 'pendingInput', `must be bytes, at most ${MAX_PENDING_INPUT}`);
  }
  return { pendingInput: p.slice() };
}
