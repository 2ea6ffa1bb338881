// The saved state of a virtio-net device. Frames are never held by the device across a save:
// received frames stay in the tap's queue until the guest has a buffer for them, and transmitted
// frames are written to the tap before their chain is returned.

import { DeviceStateError, readRecord } from '../../legacy/device-state-error.js';

export interface VirtioNetState {
  /** "02:00:00:00:00:01" form. */
  mac: string;
}

export const VIRTIO_NET_STATE_NAME = 'virtio-net';
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function parseMac(mac: string): Uint8Array {
  if (!MAC_RE.test(mac)) throw new RangeError(`"${mac}" is not a MAC address like 02:00:00:00:00:01`);
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function readVirtioNetState(state: unknown): VirtioNetState {
  const r = readRecord(VIRTIO_NET_STATE_NAME, state);
  if (typeof r.mac !== 'string' || !MAC_RE.test(r.mac)) throw new DeviceStateError(VIRTIO_NET_STATE_NAME, 'mac', 'must be a MAC address like 02:00:00:00:00:01');
  return { mac: r.mac };
}
