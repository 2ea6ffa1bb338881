// Phase 3 of a swap, launch: instance A starts B from the target build, pinned to the freed CPUs,
// hands it the restricted platform record and one end of the handover socket, and waits until B
// has checked itself (it boots a probe guest on /dev/kvm) and reports ready with the versions it
// accepts. A keeps serving its API and running its VMs meanwhile.

import { type ChildProcess, spawn } from 'node:child_process';
import { CURRENT_FORMAT_VERSION, MIN_READABLE_FORMAT_VERSION, newestCommonFormat } from '../state/envelope.js';
import { SeqpacketSocket } from '../sys/seqpacket.js';
import { setOwnNice } from '../sys/affinity.js';
import type { LaunchPackage } from './boot-info.js';
import { HandoverChannel } from './channel.js';
import { MessageType, PROTOCOL_WINDOW, int, range, str } from './protocol.js';
import { SwapError } from './swap-error.js';

export const READY_TIMEOUT_MS = 30_000;
/** How long a B that failed to launch gets to exit (and clean up) on its own before it is killed. */
const B_EXIT_GRACE_MS = 3_000;

export interface LaunchedB {
  child: ChildProcess;
  pid: number;
  channel: HandoverChannel;
  version: string;
  healthMs: number;
  /** The state format A writes for B: the newest both read (format 2 from this version on). */
  stateFormat: number;
  /** The optional messages B understands. */
  features: ReadonlySet<string>;
  /** Rejects as soon as B exits. */
  exited: Promise<number | null>;
}

/**
 * V8 flags of every daemon process.
 * - --no-opt keeps V8 from optimizing (and de-optimizing) functions at moments it chooses: measured
 *   here, a swap's pause window then always took ~3 ms, where with optimization one step in it
 *   (encoding in A or decoding in B) hit a ~4.5 ms recompile in most swaps. The daemon's per-exit
 *   work is small; its VMs ran as fast either way (blkcheck passes, heartbeats).
 * - --always-sparkplug compiles every function to baseline code on its first run. Without it B's
 *   decode and restore ran still interpreted in about 4 swaps of 10 (~750 µs each instead of ~180:
 *   the baseline compiler works in batches, when it chooses); --no-sparkplug made every swap slow.
 * - --no-flush-bytecode keeps that code: V8 otherwise drops the compiled code of functions that have
 *   not run for a while, and the pause window's code, warmed once at start-up, runs once a swap.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--no-opt', '--always-sparkplug', '--no-flush-bytecode'];
/** The nice value daemons run at. */
export const DAEMON_NICE = 0;

/** Waits for one line on stdin, then becomes the command in its arguments, stdin from /dev/null. */
const GATE_SCRIPT = 'read -r go && exec "$@" </dev/null';


/** @param opts.place moves B onto its CPUs, out of A's partition (SwapPartition.placeOutside). */
export async function launchB(pkg: LaunchPackage, opts: { stateDir: string; version: string; place: (pid: number) => Promise<void>; onSpawn?: (pid: number) => void }): Promise<LaunchedB> {
  const [mine, theirs] = SeqpacketSocket.pair();
  // B's Node start-up (~100 ms of CPU) must not run next to A's VMs, and a new process starts in A's
  // cpuset. So B starts as a shell that waits on its stdin: it is moved onto B's CPUs first, and only
  // then replaced by Node (exec keeps the pid and the cpuset). If A goes away first, the shell reads
  // end-of-file and exits without starting B.
  // B inherits the nice of the thread that forks it: the daemon's, not the swap's (SWAP_NICE).
  const restoreNice = setOwnNice(DAEMON_NICE);
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', GATE_SCRIPT, 'swapvisor-gate', process.execPath,
      ...DAEMON_NODE_FLAGS, pkg.cli, 'daemon', 'receive', '--state-dir', opts.stateDir, '--cpus', pkg.bCpus.join(','),
      '--mem-budget', `${pkg.budgetMib}M`, '--handover-fd', '3',
    ], { stdio: ['pipe', 'ignore', 'pipe', theirs.fd], detached: false });
  } finally {
    restoreNice();
    theirs.close();
  }
  child.stdin!.on('error', () => {}); // B gone before the gate opened: its exit is reported below
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const channel = new HandoverChannel(mine);
  /** Closes the channel, lets B exit on its own (it cleans up after itself) or kills it, then throws. */
  const fail = async (message: string, cause?: unknown): Promise<never> => {
    channel.close();
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), B_EXIT_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    throw new SwapError('ERR_SWAP_LAUNCH', `${message}${stderr ? `; B said: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`, { cause });
  };
  if (child.pid === undefined) await fail('could not start the new instance');
  opts.onSpawn?.(child.pid!);
  // B goes to its own CPUs before it starts. Before HELLO, so before B makes its own partition (a
  // later move would undo it).
  try {
    await opts.place(child.pid!);
  } catch (e) {
    child.stdin!.destroy();
    await fail(`could not move the new instance onto CPUs ${pkg.bCpus.join(',')}: ${(e as Error).message}`, e);
  }
  child.stdin!.end('go\n');
  channel.send(MessageType.Hello, {
    fromVersion: opts.version, pid: process.pid, cpus: [...pkg.aCpus, ...pkg.bCpus], protocol: [...PROTOCOL_WINDOW],
    stateFormat: [MIN_READABLE_FORMAT_VERSION, CURRENT_FORMAT_VERSION],
  }, { blob: pkg.platformSlice });
  let ready;
  try {
    ready = await Promise.race([
      channel.waitFor('READY', (m) => m.type === MessageType.Ready, READY_TIMEOUT_MS),
      exited.then((code) => { throw new Error(`it exited with status ${code} before it was ready`); }),
    ]);
  } catch (e) {
    return fail(`the new instance did not come up: ${(e as Error).message}`, e);
  }
  if (ready.body['healthy'] !== true) await fail(`the new instance failed its health check: ${String(ready.body['reason'] ?? 'no reason given')}`);
  const [lo, hi] = range(ready, 'stateFormat');
  const stateFormat = newestCommonFormat([lo, hi]);
  if (stateFormat === undefined) await fail(`the new instance reads state formats ${lo}-${hi}, this one writes ${MIN_READABLE_FORMAT_VERSION}-${CURRENT_FORMAT_VERSION}`);
  const features = Array.isArray(ready.body['features']) ? (ready.body['features'] as unknown[]).filter((f): f is string => typeof f === 'string') : [];
  return { child, pid: child.pid!, channel, version: str(ready, 'version'), healthMs: int(ready, 'healthMs'), stateFormat: stateFormat!, features: new Set(features), exited };
}
