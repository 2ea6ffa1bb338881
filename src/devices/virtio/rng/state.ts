// The saved state of a virtio-rng device: it has none beyond its transport's (queue positions),
// but it still saves an explicit, versionable empty record like every device.

import { readRecord } from '../../legacy/device-state-error.js';

export type VirtioRngState = Record<string, never>;

export function readVirtioRngState(state: unknown): VirtioRngState {
  readRecord('virtio-rng', state);
  return {};
}
