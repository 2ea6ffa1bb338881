// The saved state of a virtio-blk device and its checks. Queue positions and negotiated features
// belong to the transport's state; requests are never in flight at a save (the back-end is
// synchronous and the VMM processes every queue before it saves), so none are listed here.

import { DeviceStateError, readBool, readInt, readRecord } from '../../legacy/device-state-error.js';

export interface VirtioBlockState {
  capacitySectors: number;
  readOnly: boolean;
  /** The GET_ID string (at most 20 bytes). */
  serial: string;
}

const NAME = 'virtio-blk';

export function readVirtioBlockState(state: unknown): VirtioBlockState {
  const r = readRecord(NAME, state);
  const serial = r.serial;
  if (typeof serial !== 'string' || serial.length > 20) throw new DeviceStateError(NAME, 'serial', 'must be a string of at most 20 characters');
  return { capacitySectors: readInt(NAME, r, 'capacitySectors', 0, Number.MAX_SAFE_INTEGER), readOnly: readBool(NAME, r, 'readOnly'), serial };
}

export { NAME as VIRTIO_BLOCK_STATE_NAME };
