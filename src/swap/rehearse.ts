// A rehearsal of a VM's pause window on a probe VM: save, encode, decode and restore, many times.
// - B, in its health check, boots the guest kit's heartbeat in a 4 MiB VM, pauses it and rehearses
//   on it: that also proves B can run and restore a VM on this host (rehearsePauseWindow).
// - Every instance rehearses once soon after it starts (SwapControl), because the code of the window
//   runs once per swap in A and is cold otherwise: measured here, the first run of each step in a
//   process is 3-10x slower than the twentieth. That probe is paused as soon as it starts, so its
//   guest does not run, and every step is followed by a short sleep, so the instance's VMs are served
//   in between: a probe guest booting under PVM held the CPU for ~1.5 ms at a time, and back-to-back
//   rounds for about as long (rehearseQuietly).

import { CURRENT_FORMAT_VERSION, COMPAT_FORMAT_VERSION } from '../state/envelope.js';
import { decodeVmState, encodeVmState } from '../state/vm-state.js';
import { Machine, type MachineExit } from '../vmm/machine.js';
import type { VirtioAttachment } from '../vmm/virtio-host.js';

const PROBE_TIMEOUT_MS = 10_000;
/** Rounds of save, encode, decode and restore. */
export const REHEARSAL_ROUNDS = 20;
/** A's sleep between two steps: each step then holds A's CPU for at most a few hundred µs. */
const QUIET_STEP_GAP_MS = 1;

/**
 * Two virtio devices the heartbeat leaves alone, so that the virtio transport's save and restore are
 * rehearsed too (a disk or a tap would need a file or a device; their transport code is the same).
 */
const probeDevices = (): VirtioAttachment[] => [{ kind: 'rng', id: 'rng' }, { kind: 'console', id: 'vconsole', sink: { write: () => {} } }];

/**
 * Boots `kernel` (the heartbeat, run for 3 beats) and rehearses the window `rounds` times on it, in
 * both state formats; resolves with how the probe ended. Throws if the probe cannot be built.
 */
export async function rehearsePauseWindow(kernel: Uint8Array, rounds = REHEARSAL_ROUNDS): Promise<MachineExit> {
  // createAsync: the memslot ioctl (~6 ms here) runs off the event loop, which serves the instance's VMs.
  const probe = await Machine.createAsync({ name: 'swap-probe', kernel, cmdline: 'count=3 period_us=1000', memSizeMib: 4, vcpus: 1, prefault: 'now' }, { write: () => {} }, undefined, probeDevices());
  probe.start();
  const timer = setTimeout(() => void probe.stop(), PROBE_TIMEOUT_MS);
  await new Promise((r) => setTimeout(r, 1));
  // A function, not a narrowed property: the guest can end at any await.
  const paused = (): boolean => probe.state === 'paused';
  if (probe.state === 'running') {
    await probe.pause();
    // The guest may have ended while it was being paused: then there is nothing to rehearse on.
    for (let i = 0; i < rounds && paused(); i++) {
      const format = i % 2 === 0 ? CURRENT_FORMAT_VERSION : COMPAT_FORMAT_VERSION;
      probe.restoreState(decodeVmState(encodeVmState({ name: 'swap-probe', memMib: 4 }, probe.saveState(), format)).state);
      // One round at a time: the instance's VMs (device exits, consoles) are served in between.
      await new Promise((r) => setImmediate(r));
    }
    if (paused()) probe.resume();
  }
  const exit = await probe.exited;
  clearTimeout(timer);
  return exit;
}

/**
 * The start-up rehearsal (every instance, once): builds a probe VM, starts and pauses it at once, and
 * puts its state through `rounds` rounds, in both state formats, sleeping `gapMs` after every step.
 * Throws if the probe cannot be built.
 */
export async function rehearseQuietly(kernel: Uint8Array, rounds = REHEARSAL_ROUNDS, gapMs = QUIET_STEP_GAP_MS): Promise<void> {
  const probe = await Machine.createAsync({ name: 'swap-probe', kernel, cmdline: '', memSizeMib: 4, vcpus: 1 }, { write: () => {} }, undefined, probeDevices());
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, gapMs));
  try {
    // Started with the pause already asked for: the vCPU thread leaves KVM_RUN before the guest runs,
    // and the pause path's code has run once. (A plain start then pause let the vCPU thread, woken at
    // the guests' nice above this thread's swap nice, boot the guest for ~1.7 ms first.)
    probe.start({ paused: true });
    await probe.pause();
    await pause();
    for (let i = 0; i < rounds; i++) {
      const format = i % 2 === 0 ? CURRENT_FORMAT_VERSION : COMPAT_FORMAT_VERSION;
      const saved = probe.saveState();
      await pause();
      const bytes = encodeVmState({ name: 'swap-probe', memMib: 4 }, saved, format);
      await pause();
      const decoded = decodeVmState(bytes).state;
      await pause();
      probe.restoreState(decoded);
      await pause();
    }
  } finally {
    await probe.stop();
  }
}
