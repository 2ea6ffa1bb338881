// Phase 4 of a swap, move-vm: move one VM from A to B without copying its memory.
// First, while the VM still runs in A, B receives its guest-RAM memfd and its config and builds the
// VM shell (VM fd, memslots on the same memfd, pre-faulted; vCPUs; devices). Only then does A
// pause the VM, capture its complete state and send it; B restores it and resumes the guest.
// A failure before B says "running" leaves the VM in A, resumed; a VM running in B belongs to B.

import { decodeVmState, encodeVmState } from '../state/vm-state.js';
import { COMPAT_FORMAT_VERSION } from '../state/envelope.js';
import type { MovableVm } from './host.js';
import type { HandoverChannel, Received } from './channel.js';
import { faultArmed } from './faults.js';
import type { SwapJournal } from './journal.js';
import { MessageType, str } from './protocol.js';
import { SwapError } from './swap-error.js';
import type { HotLoop } from './hot-loop.js';
import { setOwnNice } from '../sys/affinity.js';
import { MSR_IA32_TSC } from '../arch/x86_64/msrs.js';

export const SHELL_TIMEOUT_MS = 30_000;
/** The nice value of A's and B's main threads while a VM is paused between them. */
export const PAUSE_WINDOW_NICE = -10;
/**
 * The nice value of A's and B's main threads for the rest of a swap: behind the guests that share
 * their CPU. At the guests' nice, a trace of 8 heartbeat VMs showed each of their timer wake-ups
 * waiting up to 1-2 ms behind the swap's own work (spawning B, journal writes, shells, API polls).
 */
export const SWAP_NICE = 5;
export const MOVE_TIMEOUT_MS = 10_000;
const IMMINENT_ACK_TIMEOUT_MS = 1_000;
const CONSOLE_TAIL_BYTES = 256 * 1024;

export interface VmMove {
  name: string;
  shellMs: number;
  /** From A's last vCPU stopping to B releasing its vCPU threads into KVM_RUN (CLOCK_MONOTONIC, both sides). */
  hostPauseUs: number;
  /**
   * Where the pause went, in µs: A waiting for the vCPUs to stop (before the host pause starts), A
   * saving and encoding the state, A sending it, the message reaching B's event loop, B decoding
   * and restoring it. B's parts are absent when B does not report them (older versions).
   */
  pauseStepsUs?: { vcpuStop: number; save: number; encode: number; saveEncode: number; send: number; transfer?: number; decode?: number; restore?: number };
  stateBytes: number;
  pausedAtNs: string;
  resumedAtNs: string;
  /** vCPU 0's TSC as saved at the pause: where the pause falls in the guest's own time (decimal). */
  guestTscAtPause?: string;
}

const forVm = (name: string, ...types: MessageType[]) => (m: Received): boolean => types.includes(m.type) && m.body['name'] === name;

/** Hands B the VM's memfd and config; resolves when B has built the shell. The VM keeps running in A. */
/** Console bytes each VM had written when its tail went to B with PrepareVm. */
const tailSentAt = new WeakMap<MovableVm, number>();

export async function prepareVmInB(channel: HandoverChannel, vm: MovableVm, journal: SwapJournal, features: ReadonlySet<string> = new Set()): Promise<number> {
  const m = vm.running;
  if (!m) throw new SwapError('ERR_SWAP_MOVE', `VM ${vm.name} is not running`);
  await journal.write('vm.prepare', { vm: vm.name });
  const t0 = performance.now();
  // The console tail travels here, before the pause, not in the pause window's state message.
  const consoleTail = Buffer.from(vm.console.readTail(CONSOLE_TAIL_BYTES)).toString('base64');
  if (features.has('console-history')) tailSentAt.set(vm, vm.console.bytesOut);
  // Guest RAM, then the devices' host fds (disk images, taps) in slot order: B uses the same files.
  const fds = [m.memory.memfd.fd, ...(m.virtioDevices?.handoverFds() ?? [])];
  channel.send(MessageType.PrepareVm, { name: vm.name, config: vm.config, createdAt: vm.createdAt, consoleTail }, { fds });
  const reply = await channel.waitFor(`the shell of ${vm.name}`, forVm(vm.name, MessageType.ShellReady, MessageType.VmFailed), SHELL_TIMEOUT_MS);
  if (reply.type === MessageType.VmFailed) throw new SwapError('ERR_SWAP_MOVE', `B could not build ${vm.name}: ${str(reply, 'message')}`);
  await journal.write('vm.shell-ready', { vm: vm.name });
  return performance.now() - t0;
}

/** What went wrong in a move, and whether B may have started the VM anyway (then B must die first). */
export class MoveFailure extends SwapError {
  constructor(message: string, readonly bMayRunIt: boolean, options?: { cause?: unknown }) {
    super('ERR_SWAP_MOVE', message, options);
  }
}

/**
 * Pauses the VM in A, sends its state, and waits for B to run it. On a clear refusal from B the VM
 * is resumed here before this throws; when B went silent the caller must stop B before resuming.
 */
export async function moveVm(channel: HandoverChannel, vm: MovableVm, journal: SwapJournal, shellMs: number, hot: HotLoop, features: ReadonlySet<string> = new Set(), stateFormat = COMPAT_FORMAT_VERSION): Promise<VmMove> {
  const m = vm.running;
  if (!m) throw new MoveFailure(`VM ${vm.name} is not running`, false);
  // Both loops stay hot only around this VM's pause window: an idle CPU here is a halted vCPU of
  // the machine underneath, and waking it costs milliseconds (see hot-loop.ts).
  const hold = { release: hot.holdFor(MOVE_TIMEOUT_MS) };
  const release = (): void => hold.release();
  try {
    const move = await pauseAndSend(channel, vm, m, journal, shellMs, features.has('imminent'), stateFormat, () => {
      // The vCPU threads share this instance's CPU: a spinning loop would compete with them while
      // they answer the pause kick. Cool down while they stop, then spin again.
      hold.release();
      return () => { hold.release = hot.holdFor(MOVE_TIMEOUT_MS); };
    });
    // Console connections follow the VM: B serves them on from now on; clients never reconnect.
    if (features.has('console-clients')) {
      const fds = vm.console.handOffClients();
      const input = Buffer.from(vm.console.takeHeldInput()).toString('base64');
      if (fds.length > 0 || input.length > 0) channel.send(MessageType.ConsoleClients, { name: vm.name, input }, { fds });
    }
    // The virtio console (only B versions that know virtio get such a VM): its clients, and the
    // client input A read but the paused guest did not take, which B delivers before anything else.
    if (vm.vconsole) {
      const vfds = vm.vconsole.handOffClients();
      const input = Buffer.from(vm.vconsole.takeHeldInput()).toString('base64');
      channel.send(MessageType.ConsoleClients, { name: vm.name, stream: 'vconsole', input }, { fds: vfds });
    }
    return move;
  } finally {
    release();
  }
}

async function pauseAndSend(channel: HandoverChannel, vm: MovableVm, m: NonNullable<MovableVm['running']>, journal: SwapJournal, shellMs: number, imminent: boolean, stateFormat: number, coolForPause: () => () => void): Promise<VmMove> {
  // Written (and fsynced) before the pause, so that the window itself does no journal I/O: a write
  // there, even without fsync, took 100-140 µs for a swap's first VM. After this line, if A dies, B
  // may own the VM: the journal's later lines and B's say which.
  await journal.write('vm.sending', { vm: vm.name });
  if (imminent) {
    channel.send(MessageType.Imminent, { name: vm.name });
    // Waking B's idle CPU costs milliseconds here: pay for it while the VM still runs, not while paused.
    await channel.waitFor(`B ready for ${vm.name}`, forVm(vm.name, MessageType.ImminentAck), IMMINENT_ACK_TIMEOUT_MS).catch(() => undefined);
  }
  const reheat = coolForPause();
  // From the pause to the send, A's main thread goes ahead of the guests on its CPU: a guest computing
  // flat out (at the same nice as this thread) would otherwise take turns with the save, encode and
  // send. Not while it waits for B: the other VMs still running here would wait behind its spinning
  // loop (a trace of 8 VMs showed them held up to 6 ms).
  const lowerPriority = setOwnNice(PAUSE_WINDOW_NICE);
  try {
    return await pausedWindow(channel, vm, m, journal, shellMs, stateFormat, reheat, lowerPriority);
  } finally {
    lowerPriority();
  }
}

async function pausedWindow(channel: HandoverChannel, vm: MovableVm, m: NonNullable<MovableVm['running']>, journal: SwapJournal, shellMs: number, stateFormat: number, reheat: () => void, sent: () => void): Promise<VmMove> {
  const pauseAskedAtNs = process.hrtime.bigint();
  await m.pause();
  reheat();
  const pausedAtNs = process.hrtime.bigint();
  vm.console.flush();
  vm.vconsole?.flush();
  const snapshot = m.saveState();
  const savedAtNs = process.hrtime.bigint();
  const guestTsc = snapshot.kvm.vcpus[0]?.msrs.find((e) => e.index === MSR_IA32_TSC)?.data;
  let blob = encodeVmState({ name: vm.name, memMib: vm.config.memMib }, snapshot, stateFormat);
  if (faultArmed('corrupt-state')) blob = Uint8Array.from(blob, (b, i) => (i === Math.floor(blob.length / 2) ? b ^ 0xff : b));
  if (faultArmed('truncate-state')) blob = blob.subarray(0, blob.length - 100);
  const encodedAtNs = process.hrtime.bigint();
  let reply: Received;
  let sentAtNs = 0n;
  try {
    channel.send(MessageType.VmState, { name: vm.name, pausedAtNs: pausedAtNs.toString() }, { blob });
    sentAtNs = process.hrtime.bigint();
    sent();
    reply = await channel.waitFor(`${vm.name} running in B`, forVm(vm.name, MessageType.VmRunning, MessageType.VmFailed), MOVE_TIMEOUT_MS);
  } catch (e) {
    throw new MoveFailure(`moving ${vm.name} failed: ${(e as Error).message}`, true, { cause: e });
  }
  if (reply.type === MessageType.VmFailed) {
    m.resume();
    await journal.write('vm.resumed-in-a', { vm: vm.name, reason: str(reply, 'message') });
    throw new MoveFailure(`B refused ${vm.name}: ${str(reply, 'message')}; it runs on in this instance`, false);
  }
  const resumedAtNs = BigInt(str(reply, 'resumedAtNs'));
  // What the guest printed between PrepareVm and the pause, so B's console history has no hole.
  const since = vm.console.bytesOut - (tailSentAt.get(vm) ?? vm.console.bytesOut);
  if (since > 0) channel.send(MessageType.ConsoleHistory, { name: vm.name, bytes: Buffer.from(vm.console.readTail(Math.min(since, CONSOLE_TAIL_BYTES))).toString('base64') });
  // A keeps its paused copy ("parked") until the swap commits, so a rollback can bring the VM back.
  await journal.write('vm.moved', { vm: vm.name, bytes: blob.byteLength, pausedAtNs: pausedAtNs.toString(), resumedAtNs: resumedAtNs.toString() });
  return {
    name: vm.name, shellMs, stateBytes: blob.byteLength, pausedAtNs: pausedAtNs.toString(), resumedAtNs: resumedAtNs.toString(),
    ...(guestTsc !== undefined ? { guestTscAtPause: guestTsc.toString() } : {}),
    hostPauseUs: Number(resumedAtNs - pausedAtNs) / 1000,
    pauseStepsUs: {
      vcpuStop: Number(pausedAtNs - pauseAskedAtNs) / 1000, save: Number(savedAtNs - pausedAtNs) / 1000, encode: Number(encodedAtNs - savedAtNs) / 1000,
      saveEncode: Number(encodedAtNs - pausedAtNs) / 1000, send: Number(sentAtNs - encodedAtNs) / 1000,
      ...bSteps(reply, sentAtNs),
    },
  };
}

/** B's part of the pause, from its VmRunning reply (when it says). */
function bSteps(reply: Received, sentAtNs: bigint): { transfer?: number; decode?: number; restore?: number } {
  const received = reply.body['receivedAtNs'];
  const decode = reply.body['decodeUs'];
  const restore = reply.body['restoreUs'];
  if (typeof received !== 'string' || !/^\d+$/.test(received) || typeof decode !== 'number' || typeof restore !== 'number') return {};
  return { transfer: Number(BigInt(received) - sentAtNs) / 1000, decode, restore };
}

/**
 * Rollback of one moved VM: B pauses it and sends its state back; A restores it into its parked
 * machine (same VM fd, same memfd) and resumes it there.
 */
export async function returnVm(channel: HandoverChannel, vm: MovableVm, journal: SwapJournal): Promise<void> {
  const m = vm.running;
  if (!m) throw new SwapError('ERR_SWAP_MOVE', `VM ${vm.name} has no parked machine to return to`);
  await journal.write('vm.return-requested', { vm: vm.name });
  channel.send(MessageType.ReturnVm, { name: vm.name });
  const reply = await channel.waitFor(`${vm.name} coming back`, forVm(vm.name, MessageType.VmState, MessageType.VmFailed), MOVE_TIMEOUT_MS);
  if (reply.type === MessageType.VmFailed) throw new SwapError('ERR_SWAP_MOVE', `B could not give back ${vm.name}: ${str(reply, 'message')}`);
  const { state } = decodeVmState(reply.blob);
  m.restoreState(state);
  m.resume();
  channel.send(MessageType.VmRunning, { name: vm.name, resumedAtNs: process.hrtime.bigint().toString() });
  await journal.write('vm.returned', { vm: vm.name });
}
