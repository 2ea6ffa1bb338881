// The patent's "duplicate, test, then move": before any VM moves, one VM is cloned into B from a
// consistent point (a brief pause in A: its complete state, and its RAM mapped copy-on-write by B),
// the clone runs isolated (its console goes to a separate log; it shares no back-end with the
// original), B checks its health (heartbeats go on, or a console pattern appears), and the clone is
// discarded. Only then does the real move start; a failed canary aborts the swap with nothing moved.
//
// The clone's RAM is a MAP_PRIVATE mapping of the memfd, every page write-faulted (copied) while the
// original is paused: a copy-on-write mapping alone would keep showing the original's later writes in
// pages the clone has not written yet. So the original pauses for as long as that copy takes (about
// a millisecond per few MiB here), and the canary costs the clone's RAM once, while it runs.

import { encodeVmState } from '../state/vm-state.js';
import { COMPAT_FORMAT_VERSION } from '../state/envelope.js';
import type { HandoverChannel, Received } from './channel.js';
import type { MovableVm } from './host.js';
import type { SwapJournal } from './journal.js';
import { MessageType } from './protocol.js';
import { SwapError } from './swap-error.js';

export interface CanaryOptions {
  vm: string;
  secs: number;
  /** A regular expression the clone's console must print; without one, heartbeats must go on. */
  pattern?: string;
}

export interface CanaryResult {
  vm: string;
  ok: boolean;
  detail: string;
  pauseUs: number;
}

export async function runCanary(channel: HandoverChannel, vm: MovableVm, opts: CanaryOptions, journal: SwapJournal, stateFormat = COMPAT_FORMAT_VERSION): Promise<CanaryResult> {
  const m = vm.running;
  if (!m) throw new SwapError('ERR_SWAP_CANARY', `canary VM ${vm.name} is not running`);
  await journal.write('canary.start', { vm: vm.name });
  let early: Received | undefined; // B failed before it could copy the RAM
  const t0 = process.hrtime.bigint();
  await m.pause();
  try {
    const blob = encodeVmState({ name: vm.name, memMib: vm.config.memMib }, m.saveState(), stateFormat);
    channel.send(MessageType.CanaryStart, { name: vm.name, config: vm.config, secs: opts.secs, pattern: opts.pattern ?? null }, { blob, fds: [m.memory.memfd.fd] });
    await channel.waitFor(`the canary copy of ${vm.name}`, (r) => (r.type === MessageType.CanaryMapped || r.type === MessageType.CanaryResult) && r.body['name'] === vm.name, 30_000)
      .then((r) => { if (r.type === MessageType.CanaryResult) early = r; });
  } finally {
    m.resume();
  }
  const pauseUs = Number(process.hrtime.bigint() - t0) / 1000;
  const reply = early ?? await channel.waitFor(`the canary result for ${vm.name}`, (r) => r.type === MessageType.CanaryResult && r.body['name'] === vm.name, opts.secs * 1000 + 30_000);
  const result = { vm: vm.name, ok: reply.body['ok'] === true, detail: String(reply.body['detail'] ?? ''), pauseUs };
  await journal.write('canary.result', { vm: vm.name, ok: result.ok, detail: result.detail });
  return result;
}
