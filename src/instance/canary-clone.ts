// Instance B's part of a canary (the patent's "duplicate, test, then move"): a clone of one of A's VMs,
// on a copy-on-write private mapping of its RAM, run isolated for a few seconds with its console to a
// separate log, judged, and discarded. The original never notices: the clone shares no back-end with it.

import { MiB } from '../memory/gpa.js';
import { decodeVmState } from '../state/vm-state.js';
import type { HandoverChannel, Received } from '../swap/channel.js';
import { MessageType, int, str } from '../swap/protocol.js';
import { Memfd } from '../sys/memfd.js';
import type { RingPoller } from '../vmm/console-poller.js';
import { GuestRam } from '../vmm/guest-ram.js';
import { Machine, type MachineExit } from '../vmm/machine.js';
import { validateVmConfig } from './api/validate.js';
import { handoverFdCount } from './vm-devices.js';
import { VmConsole } from './vm-console.js';

export interface CanaryDeps {
  channel: HandoverChannel;
  /** The CPUs the clone's vCPU threads run on. */
  cpus: number[];
  ringPoller: RingPoller;
  /** Where the clone's console goes. */
  logPath: (vmName: string) => string;
}

/** A clone is healthy if it did not crash, printed what was asked, or kept its heartbeats in order. */
export function judgeCanary(text: string, exit: MachineExit | undefined, pattern: RegExp | undefined): [boolean, string] {
  if (exit && exit.reason === 'fault') return [false, `the clone crashed: ${exit.fault.kind} at rip 0x${exit.fault.rip?.toString(16) ?? '?'}: ${exit.fault.detail}`];
  if (exit && exit.reason === 'guest-exit' && exit.status !== 0) return [false, `the clone exited with status ${exit.status}`];
  if (pattern) return pattern.test(text) ? [true, `the clone printed /${pattern.source}/`] : [false, `the clone never printed /${pattern.source}/`];
  const seqs = [...text.matchAll(/^hb (\d+) \d+ \d+$/gm)].map((x) => Number(x[1]));
  if (seqs.length === 0) return exit ? [true, `the clone ended with ${exit.reason}`] : [false, 'the clone printed no heartbeat; give a --canary-pattern for guests that are not heartbeats'];
  const holes = seqs.filter((s, i) => i > 0 && s !== seqs[i - 1]! + 1).length;
  return holes === 0 ? [true, `the clone went on with ${seqs.length} heartbeats in order (${seqs[0]} to ${seqs[seqs.length - 1]})`] : [false, `the clone's heartbeats skipped ${holes} times`];
}

/** Clones the VM in `m` (CANARY_CLONE), runs and judges the clone, and answers CANARY_RESULT. */
export async function runCanaryClone(m: Received, deps: CanaryDeps): Promise<void> {
  const name = str(m, 'name');
  let machine: Machine | undefined;
  let text = '';
  const result = (ok: boolean, detail: string): void => deps.channel.send(MessageType.CanaryResult, { name, ok, detail });
  try {
    const config = validateVmConfig(m.body['config']);
    const secs = int(m, 'secs');
    const patternText = m.body['pattern'];
    const pattern = typeof patternText === 'string' ? new RegExp(patternText, 'm') : undefined;
    if (m.fds.length !== 1) throw new Error(`expected the VM's memfd, got ${m.fds.length} fds`);
    // The clone may share no back-end with the original: it would write the same disk or tap.
    if (handoverFdCount(config) > 0 || config.vconsole || config.rng) throw new Error(`${name} has virtio devices, and a canary clone of such a VM is not supported yet: swap without --canary`);
    const memfd = Memfd.fromFd(m.fds[0]!, config.memMib * MiB);
    // The copy first, then A may resume the original; the rest of the clone is built after.
    const copy = GuestRam.takePrivateCopy(memfd);
    deps.channel.send(MessageType.CanaryMapped, { name });
    const log = new VmConsole(deps.logPath(name), 'handed-over');
    const sink = { write: (b: Uint8Array): void => { log.write(b); if (text.length < 1 << 20) text += Buffer.from(b).toString('latin1'); } };
    machine = Machine.createShell({ name: `${name}-canary`, kernel: new Uint8Array(0), cmdline: '', memSizeMib: config.memMib, vcpus: config.vcpus, cpus: deps.cpus, prefault: 'now' },
      sink, memfd, deps.ringPoller, { premapped: copy });
    machine.restoreState(decodeVmState(m.blob).state);
    machine.start();
    const exit = await Promise.race([machine.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), secs * 1000))]);
    if (!exit) await machine.stop();
    log.close();
    result(...judgeCanary(text, exit, pattern));
  } catch (e) {
    if (machine) await machine.stop().catch(() => undefined);
    result(false, e instanceof Error ? e.message : String(e));
  }
}
