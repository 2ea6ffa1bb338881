// A VM's virtio devices as the instance provides them: it opens the host side of what the stored
// VM definition asks for (disk images, taps, a virtio console log, getrandom) for a start, or
// wraps the fds a previous instance handed over with the VM in a hot swap.

import { createHash } from 'node:crypto';
import { BlockFile } from '../sys/block-file.js';
import { Tap } from '../sys/tap.js';
import { type VirtioAttachment, closeAttachments } from '../vmm/virtio-host.js';
import type { VmConfig } from './vm-config.js';
import type { ByteSink } from '../devices/device.js';

/** The id of the virtio console in every VM that has one (its state key). */
export const VCONSOLE_ID = 'vconsole';
export const RNG_ID = 'rng';

/** A locally administered unicast MAC derived from the VM and device names, stable across restarts. */
export function defaultMac(vmName: string, deviceId: string): string {
  const h = createHash('sha256').update(`${vmName}/${deviceId}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** How many host fds travel with the VM in a swap: one per disk and per net, in config order. */
export function handoverFdCount(config: VmConfig): number {
  return (config.disks?.length ?? 0) + (config.nets?.length ?? 0);
}

/**
 * Opens the VM's devices for a start. On failure, whatever was opened is closed and the error
 * (BlockFileError, TapError: each says what to do) is thrown.
 */
export function openVmDevices(config: VmConfig, vconsole: ByteSink | undefined): VirtioAttachment[] {
  return build(config, vconsole, {
    disk: (d) => BlockFile.open(d.path, { readOnly: d.readOnly ?? false }),
    net: (n) => Tap.open(n.tap, n.netns !== undefined ? { netns: n.netns } : {}),
  });
}

/** Wraps the fds a previous instance handed over (disks then nets, in config order). */
export function adoptVmDevices(config: VmConfig, fds: readonly number[], vconsole: ByteSink | undefined): VirtioAttachment[] {
  if (fds.length !== handoverFdCount(config)) {
    throw new Error(`expected ${handoverFdCount(config)} device fds for ${config.name}, got ${fds.length}`);
  }
  let next = 0;
  return build(config, vconsole, {
    disk: (d) => BlockFile.fromFd(fds[next++]!, d.readOnly ?? false),
    net: (n) => Tap.fromFd(fds[next++]!, n.tap),
  });
}

function build(config: VmConfig, vconsole: ByteSink | undefined, open: {
  disk: (d: NonNullable<VmConfig['disks']>[number]) => BlockFile;
  net: (n: NonNullable<VmConfig['nets']>[number]) => Tap;
}): VirtioAttachment[] {
  const out: VirtioAttachment[] = [];
  try {
    for (const d of config.disks ?? []) out.push({ kind: 'block', id: d.id, file: open.disk(d), serial: d.serial ?? d.id });
    for (const n of config.nets ?? []) out.push({ kind: 'net', id: n.id, tap: open.net(n), mac: n.mac ?? defaultMac(config.name, n.id) });
  } catch (e) {
    closeAttachments(out);
    throw e;
  }
  if (config.vconsole) out.push({ kind: 'console', id: VCONSOLE_ID, sink: vconsole ?? { write: () => {} } });
  if (config.rng) out.push({ kind: 'rng', id: RNG_ID });
  return out;
}
