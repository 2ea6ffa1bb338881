// The hot-swap benchmark: N heartbeat VMs in one daemon, then R swaps in a row to the same build (A→B→C→…),
// each measured from its own report (host pause per VM, total time, B's start, moving the VMs), from the guests'
// consoles (the guest-visible gap: largest TSC delta between consecutive heartbeats minus the period, within
// ±1 s of the swap, with a seq continuity check) and from procfs (Shmem growth and the daemons' RssAnon sampled
// every ~5 ms). QEMU's local live migration of one VM is the peer, run after the daemon has stopped. It prints
// one JSON object on stdout and progress on stderr. Every daemon it starts it also stops, by PID.

import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient } from '../src/cli/api-client.js';
import type { SwapReportJson } from '../src/instance/swap-control.js';
import { BenchRunError } from './errors.js';
import { MemSampler, SAMPLE_MS, shmemMib, waitGuestRamResident } from './swap-memory.js';
import { lowerOwnPriority } from './priority.js';
import { gapWindow } from './heartbeat-log.js';
import { DAEMON_CPUS, GUEST, type Owned, checkAllRunning, cleanupSync, consoleBeats, createVms, describeApiError, forEachLimited, lastBeats, startDaemon, waitHeartbeating } from './swap-fleet.js';
import { hostInfo } from './host.js';
import { measureQemuMigration } from './qemu-migration.js';
import { measureHostFloor } from './host-floor.js';
import { percentile, round } from './stats.js';
import { inRepo, memArg, repoRoot, wholeNumber, stringOptions } from './args.js';

export const SWAP_USAGE =
  'usage: npm run bench -- swap [--vms N] [--mem SIZE] [--period-us US] [--runs R]   (N 1..200, default 8; SIZE 2M..4G, default 64M; US 100..100000, default 1000 for N ≤ 2, 5000 up to 16, 50000 above (a 1 ms heartbeat VM costs ~23% of a CPU here, and during a swap each instance has one CPU); R 1..20, default 3)';

const DEFAULTS = { vms: 8, memMib: 64, runs: 3 };
const MAX_VMS = 200;
const MAX_MEM_MIB = 4096;
const MIN_BUDGET_MIB = 4096;
const BUDGET_SLACK_MIB = 512;
/** How long the VMs run before the first swap, and the window either side of a swap for the gap. */
const SETTLE_MS = 1_000;
/** How long the VMs' background pre-fault may take before the first swap (1 GiB VMs take seconds). */
const RESIDENT_TIMEOUT_MS = 60_000;
/** How long the host's floor is measured (cyclictest), per CPU. */
const HOST_FLOOR_SECONDS = 20;
const WINDOW_MS = 1_000;
/** Extra wait after a swap's window before reading the consoles, so that the window's last line is printed. */
const WINDOW_SLACK_MS = 300;
const SWAP_POLL_MS = 50;
const SWAP_TIMEOUT_MS = 120_000;
const A_EXIT_TIMEOUT_MS = 10_000;
const MAX_TAIL_BYTES = 1_048_576;
const QEMU_RUNS = 3;
const TARGETS = { guestGapMsP50: 0.5, guestGapMsP99: 2, moveAndRetireMs64Vms: 1000, gapFlatAcrossRamSizePct: 20, guestRamBytesCopied: 0 };


export interface SwapArgs { vms: number; memMib: number; periodUs: number; runs: number }

export function parseSwapArgs(argv: string[]): SwapArgs {
  const values = stringOptions(argv, ['vms', 'mem', 'period-us', 'runs'], SWAP_USAGE);
  const memMib = memArg(values.mem, DEFAULTS.memMib, MAX_MEM_MIB);
  const vms = wholeNumber('vms', values.vms, DEFAULTS.vms, 1, MAX_VMS);
  return {
    vms,
    memMib,
    periodUs: wholeNumber('period-us', values['period-us'], vms <= 2 ? 1000 : vms <= 16 ? 5000 : 50_000, 100, 100_000),
    runs: wholeNumber('runs', values.runs, DEFAULTS.runs, 1, 20),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One swap.

interface SwapRun {
  index: number;
  fromPid: number;
  toPid: number;
  state: string;
  totalMs: number;
  bStartMs: number;
  moveAllMs: number;
  /** From the start of move-vm to the report's end (totalMs): the VMs moved and A retired, without B's start. */
  moveAndRetireMs: number;
  /** From POST /v1/swap to the first procfs sample in which A was gone, as this bench saw it. */
  aExitMs: number | null;
  hostPauseUs: number[];
  /** Each moved VM's pause broken into steps (µs), as the report gives them. */
  pauseSteps: Array<Record<string, number>>;
  guestGapMs: number[];
  quietGapMs: number[];
  /** For the VM with the largest gap: where it ended, in heartbeats after the last one printed before the swap. */
  worstGapAtSeqAfterSwapStart: number;
  /** Per VM: the interval spanning its own pause (guest TSC at the pause, from the report), minus the period. */
  pauseGapMs: number[];
  /** Per VM: the largest gap of the window without that interval. */
  otherGapMs: number[];
  /** Where the largest of those ended, in ms of guest time after that VM's pause (negative: before it). */
  worstOtherGapFromPauseMs: number | null;
  seqLost: number;
  seqDuplicated: number;
  guestRamBytesCopied: number;
  shmemGrowthPeakMib: number;
  shmemAfterMinusBeforeMib: number;
  daemonsRssAnonPeakMib: number;
  aRssAnonBeforeMib: number;
  guestRamResidentMib: number;
  extraHostMemoryMib: number;
  samples: number;
  /** The host's 1-minute load average just before the swap: others' work on the same 2 CPUs shows here. */
  loadAvg1: number;
}

function phaseMs(r: SwapReportJson, name: string): { start: number; end: number | null } {
  const p = r.phases.find((x) => x.name === name);
  if (!p) throw new BenchRunError(`swap: the report of ${r.id} has no ${name} phase: ${JSON.stringify(r.phases)}`);
  return { start: p.startMs, end: p.endMs };
}

const TRANSIENT = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ERR_DAEMON_NOT_RUNNING']);

/** POSTs the swap and polls GET /v1/swap (answered by A, then B) until this swap is done or rolled back. */
async function runSwap(api: ApiClient): Promise<SwapReportJson> {
  let first: SwapReportJson;
  try {
    first = await api.json<SwapReportJson>('POST', '/v1/swap', { to: repoRoot });
  } catch (e) {
    throw new BenchRunError(`swap: POST /v1/swap failed: ${describeApiError(e)}`, { cause: e });
  }
  const t0 = performance.now();
  for (let transient = 0; ;) {
    await sleep(SWAP_POLL_MS);
    if (performance.now() - t0 > SWAP_TIMEOUT_MS) throw new BenchRunError(`swap: ${first.id} not finished after ${SWAP_TIMEOUT_MS / 1000} s`);
    let r: SwapReportJson;
    try {
      r = await api.json<SwapReportJson>('GET', '/v1/swap');
      transient = 0;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== undefined && TRANSIENT.has(code) && ++transient < 200) continue;
      throw new BenchRunError(`swap: GET /v1/swap during ${first.id} failed: ${describeApiError(e)}`, { cause: e });
    }
    if (r.id !== first.id) throw new BenchRunError(`swap: GET /v1/swap reports ${r.id}, but this bench started ${first.id}`);
    if (r.state === 'done' || r.state === 'rolled-back') return r;
  }
}

async function swapOnce(index: number, api: ApiClient, stateDir: string, names: string[], a: SwapArgs, tscKhz: number, owned: Owned,
  log: (line: string) => void): Promise<SwapRun> {
  const aPid = (await api.json<{ pid: number }>('GET', '/v1/instance')).pid;
  const loadAvg1 = os.loadavg()[0]!;
  owned.pids.add(aPid);
  const seq0 = await lastBeats(api, names);
  const sampler = new MemSampler(aPid, stateDir);
  const t0 = performance.now();
  sampler.start(t0);
  let report: SwapReportJson;
  try {
    report = await runSwap(api);
    if (report.to.pid !== null) owned.pids.add(report.to.pid);
    if (sampler.bPid !== undefined) owned.pids.add(sampler.bPid);
    const until = performance.now() + A_EXIT_TIMEOUT_MS;
    while (report.state === 'done' && sampler.aExitMs === undefined && performance.now() < until) await sleep(SAMPLE_MS);
  } finally {
    sampler.stop();
  }
  if (report.state !== 'done' || report.error !== null || report.lost.length > 0) {
    log(`swap: swap ${index} report: ${JSON.stringify(report)}`);
    throw new BenchRunError(`swap: swap ${index} (${report.id}) ended "${report.state}"` +
      `${report.error ? ` with ${report.error.code}: ${report.error.message}` : ''}${report.lost.length ? `; lost VMs: ${report.lost.join(', ')}` : ''}`);
  }
  if (sampler.aExitMs === undefined) throw new BenchRunError(`swap: swap ${index} is done but instance A (pid ${aPid}) still runs ${A_EXIT_TIMEOUT_MS / 1000} s later`);
  const toPid = (await api.json<{ pid: number }>('GET', '/v1/instance')).pid;
  owned.pids.add(toPid);
  if (toPid !== report.to.pid) throw new BenchRunError(`swap: after swap ${index} the API is answered by pid ${toPid}, the report names ${report.to.pid}`);
  await checkAllRunning(api, names, `after swap ${index}`);
  const seq1 = await lastBeats(api, names);
  const tSeq1 = performance.now();

  // Let the guests print the window's second half, then read each console back to before the swap.
  await sleep(WINDOW_MS + WINDOW_SLACK_MS);
  const shmemAfter = shmemMib();
  const k = Math.ceil((WINDOW_MS * 1000) / a.periodUs);
  const windowTsc = BigInt(WINDOW_MS * tscKhz);
  const gaps: number[] = [];
  const quiet: number[] = [];
  const pauseGaps: number[] = [];
  const otherGaps: number[] = [];
  let worstOther = { gapMs: -Infinity, fromPauseMs: 0 };
  let worstAt = 0;
  let worst = -Infinity;
  let seqLost = 0;
  let seqDuplicated = 0;
  const problems: string[] = [];
  await forEachLimited(names, async (n) => {
    const b0 = seq0.get(n)!;
    const b1 = seq1.get(n)!;
    const sinceSeq1 = performance.now() - tSeq1 + 200;
    // At most one line per period, twice over for safety: from a window before the swap to now.
    const lines = b1.seq - b0.seq + 2 * (2 * k + Math.ceil((sinceSeq1 * 1000) / a.periodUs)) + 100;
    const { beats, wholeLog } = await consoleBeats(api, n, Math.min(MAX_TAIL_BYTES, lines * 48));
    const mark = report.vms.find((v) => v.name === n)?.guestTscAtPause;
    const w = gapWindow(beats, b0.tsc - windowTsc, b1.tsc + windowTsc, b0.seq, a.periodUs, tscKhz, wholeLog, `swap: swap ${index}, VM ${n}`,
      mark !== undefined ? BigInt(mark) : undefined);
    if (w.atMark) {
      pauseGaps.push(w.atMark.gapMs);
      otherGaps.push(w.atMark.otherGapMs);
      if (w.atMark.otherGapMs > worstOther.gapMs) worstOther = { gapMs: w.atMark.otherGapMs, fromPauseMs: w.atMark.otherGapFromMarkMs };
    }
    if (w.gapMs > worst) [worst, worstAt] = [w.gapMs, w.gapEndSeq - b0.seq];
    gaps.push(w.gapMs);
    quiet.push(w.quietGapMs);
    seqLost += w.seqLost;
    seqDuplicated += w.seqDuplicated;
    for (const p of w.seqProblems) problems.push(`${n}: ${p}`);
  });
  if (seqLost > 0 || seqDuplicated > 0) {
    throw new BenchRunError(`swap: swap ${index} (${report.id}) broke heartbeat continuity: ${seqLost} seq lost, ${seqDuplicated} duplicated or out of order (${problems.slice(0, 8).join('; ')})`);
  }

  const launch = phaseMs(report, 'launch');
  const move = phaseMs(report, 'move-vm');
  if (report.totalMs === null || launch.end === null || move.end === null) {
    throw new BenchRunError(`swap: the report of ${report.id} is done but incomplete: totalMs ${report.totalMs}, phases ${JSON.stringify(report.phases)}`);
  }
  const shmemGrowthPeakMib = sampler.peakShmemMib - sampler.shmemBeforeMib;
  const run: SwapRun = {
    index,
    fromPid: aPid,
    toPid,
    state: report.state,
    totalMs: report.totalMs,
    bStartMs: launch.end - launch.start,
    moveAllMs: move.end - move.start,
    moveAndRetireMs: report.totalMs - move.start,
    aExitMs: sampler.aExitMs ?? null,
    hostPauseUs: report.vms.map((v) => v.hostPauseUs),
    pauseSteps: report.vms.map((v) => ({ ...(v.pauseStepsUs ?? {}) })),
    guestGapMs: gaps,
    quietGapMs: quiet,
    worstGapAtSeqAfterSwapStart: worstAt,
    pauseGapMs: pauseGaps,
    otherGapMs: otherGaps,
    worstOtherGapFromPauseMs: Number.isFinite(worstOther.gapMs) ? round(worstOther.fromPauseMs, 1) : null,
    seqLost,
    seqDuplicated,
    guestRamBytesCopied: report.guestRamBytesCopied,
    shmemGrowthPeakMib,
    shmemAfterMinusBeforeMib: shmemAfter - sampler.shmemBeforeMib,
    daemonsRssAnonPeakMib: sampler.peakDaemonsRssAnonMib,
    aRssAnonBeforeMib: sampler.aRssAnonBeforeMib,
    guestRamResidentMib: sampler.aRssShmemBeforeMib,
    extraHostMemoryMib: sampler.peakDaemonsRssAnonMib - sampler.aRssAnonBeforeMib + Math.max(0, shmemGrowthPeakMib),
    samples: sampler.samples,
    loadAvg1,
  };
  if (run.hostPauseUs.length !== names.length) throw new BenchRunError(`swap: the report of ${report.id} lists ${run.hostPauseUs.length} moved VMs, expected ${names.length}`);
  log(`swap: swap ${index}: pid ${aPid} → ${toPid} in ${run.totalMs.toFixed(0)} ms (B start ${run.bStartMs.toFixed(0)} ms, move-vm ${run.moveAllMs.toFixed(0)} ms), ` +
    `host pause max ${Math.max(...run.hostPauseUs).toFixed(0)} µs, guest gap max ${Math.max(...gaps).toFixed(2)} ms (quiet max ${Math.max(...quiet).toFixed(2)} ms), ` +
    `Shmem +${shmemGrowthPeakMib.toFixed(1)} MiB peak, ${run.samples} samples`);
  return run;
}

// ---------------------------------------------------------------------------------------------------------------

function checkBuilt(): void {
  const needed: Array<[string, string]> = [
    ['dist/src/cli/main.js', 'npm run setup'],
    ['bin/swapvisor.cjs', 'npm run setup'],
    [`guest/build/${GUEST}.elf`, 'make -C guest'],
  ];
  for (const [file, fix] of needed) {
    if (!existsSync(inRepo(file))) throw new BenchRunError(`swap: ${file} is missing; build it first (${fix})`);
  }
}

/** The median of each pause step over every moved VM (see VmMove.pauseStepsUs in src/swap/move-vm.ts). */
function stepMedians(steps: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const keys = [...new Set(steps.flatMap((s) => Object.keys(s)))];
  return Object.fromEntries(keys.map((k) => [k, round(percentile(steps.map((s) => s[k]).filter((x): x is number => typeof x === 'number'), 50), 0)]));
}

const dist3 = (xs: number[], digits = 3): { p50: number; p99: number; max: number } =>
  ({ p50: round(percentile(xs, 50), digits), p99: round(percentile(xs, 99), digits), max: round(Math.max(...xs), digits) });

async function measureSwapvisor(a: SwapArgs, owned: Owned, log: (line: string) => void): Promise<{ runs: SwapRun[]; tscKhz: number }> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-swap-'));
  owned.stateDir = stateDir;
  const budgetMib = Math.max(MIN_BUDGET_MIB, a.vms * a.memMib + BUDGET_SLACK_MIB);
  log(`swap: starting a daemon in ${stateDir} on CPUs ${DAEMON_CPUS} with a budget of ${budgetMib} MiB`);
  const pid = await startDaemon(stateDir, budgetMib);
  owned.pids.add(pid);
  const api = new ApiClient(stateDir);
  const names = Array.from({ length: a.vms }, (_, i) => `s${String(i + 1).padStart(3, '0')}`);
  log(`swap: creating ${a.vms} heartbeat VMs (${a.memMib} MiB, period ${a.periodUs} µs)`);
  await createVms(api, names, a);
  const tscKhz = await waitHeartbeating(api, names, a.periodUs, log);
  const residentMs = await waitGuestRamResident(pid, a.vms * a.memMib, RESIDENT_TIMEOUT_MS);
  log(`swap: all guest RAM resident ${residentMs.toFixed(0)} ms after the first heartbeats`);
  await sleep(SETTLE_MS);
  await checkAllRunning(api, names, 'before the first swap');
  const runs: SwapRun[] = [];
  for (let i = 1; i <= a.runs; i++) runs.push(await swapOnce(i, api, stateDir, names, a, tscKhz, owned, log));
  return { runs, tscKhz };
}

export async function runSwapBench(argv: string[], log: (line: string) => void): Promise<Record<string, unknown>> {
  const a = parseSwapArgs(argv);
  checkBuilt();
  // The measuring process (procfs sampling every few ms, log reading) must not take CPU from the VMs
  // it measures: it runs at nice 10, the daemons and the QEMU peer at nice 0 (see priority.ts).
  lowerOwnPriority();
  const owned: Owned = { pids: new Set() };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`swap: ${sig}: cleaning up`);
    cleanupSync(owned, log);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // The host alone first, with nothing of ours running: the floor under any guest's gap.
    const hostFloor = await measureHostFloor(a.periodUs, HOST_FLOOR_SECONDS, log);
    let sv: Awaited<ReturnType<typeof measureSwapvisor>>;
    try {
      sv = await measureSwapvisor(a, owned, log);
    } finally {
      // Stop the daemon before QEMU runs, so that our VMs do not load the peer's measurement.
      cleanupSync(owned, log);
    }
    log(`swap: QEMU peer: ${QEMU_RUNS} local live migrations of one ${a.memMib} MiB heartbeat VM, period ${a.periodUs} µs`);
    const qemu = await measureQemuMigration({ memMib: a.memMib, runs: QEMU_RUNS, periodUs: a.periodUs, log });
    const runs = sv.runs;
    const all = (f: (r: SwapRun) => number[]): number[] => runs.flatMap(f);
    const guestGap = dist3(all((r) => r.guestGapMs));
    const pauseGaps = all((r) => r.pauseGapMs);
    const hostPause = dist3(all((r) => r.hostPauseUs), 1);
    const moveAndRetire = runs.map((r) => r.moveAndRetireMs);
    const shmemGrowthPeakMib = Math.max(...runs.map((r) => r.shmemGrowthPeakMib));
    const extraHostMemoryMib = Math.max(...runs.map((r) => r.extraHostMemoryMib));
    const bytesCopied = runs.reduce((s, r) => s + r.guestRamBytesCopied, 0);
    const qemuGapP50 = qemu.tscSwitchGapMs.p50;
    return {
      bench: 'swap',
      vms: a.vms,
      memMib: a.memMib,
      periodUs: a.periodUs,
      runs: a.runs,
      tscKhz: sv.tscKhz,
      hostPauseUs: hostPause,
      pauseStepsUsP50: stepMedians(runs.flatMap((r) => r.pauseSteps)),
      guestGapMs: guestGap,
      guestQuietGapMs: dist3(all((r) => r.quietGapMs.filter((x) => Number.isFinite(x)))),
      // The guest gap split in two: at each VM's own pause, and the largest elsewhere in the window.
      ...(pauseGaps.length > 0 ? { guestGapAtPauseMs: dist3(pauseGaps), guestGapElsewhereMs: dist3(all((r) => r.otherGapMs)) } : {}),
      totalSwapMs: { p50: round(percentile(runs.map((r) => r.totalMs), 50), 1), max: round(Math.max(...runs.map((r) => r.totalMs)), 1) },
      bStartMs: { p50: round(percentile(runs.map((r) => r.bStartMs), 50), 1) },
      moveAllMs: { p50: round(percentile(runs.map((r) => r.moveAllMs), 50), 1) },
      moveAndRetireMs: { p50: round(percentile(moveAndRetire, 50), 1), max: round(Math.max(...moveAndRetire), 1) },
      shmemGrowthPeakMib: round(shmemGrowthPeakMib, 2),
      extraHostMemoryMib: round(extraHostMemoryMib, 2),
      guestRamResidentMib: round(Math.max(...runs.map((r) => r.guestRamResidentMib)), 2),
      guestRamBytesCopied: bytesCopied,
      seqLost: runs.reduce((s, r) => s + r.seqLost, 0),
      seqDuplicated: runs.reduce((s, r) => s + r.seqDuplicated, 0),
      perSwap: runs.map((r) => ({
        index: r.index, fromPid: r.fromPid, toPid: r.toPid,
        totalMs: round(r.totalMs, 1), bStartMs: round(r.bStartMs, 1), moveAllMs: round(r.moveAllMs, 1), moveAndRetireMs: round(r.moveAndRetireMs, 1),
        aExitMs: r.aExitMs === null ? null : round(r.aExitMs, 1),
        hostPauseUsMax: round(Math.max(...r.hostPauseUs), 1), guestGapMsP50: round(percentile(r.guestGapMs, 50), 3),
        guestGapMsMax: round(Math.max(...r.guestGapMs), 3), worstGapAtSeqAfterSwapStart: r.worstGapAtSeqAfterSwapStart,
        worstOtherGapFromPauseMs: r.worstOtherGapFromPauseMs,
        shmemGrowthPeakMib: round(r.shmemGrowthPeakMib, 2), shmemAfterMinusBeforeMib: round(r.shmemAfterMinusBeforeMib, 2),
        aRssAnonBeforeMib: round(r.aRssAnonBeforeMib, 1), daemonsRssAnonPeakMib: round(r.daemonsRssAnonPeakMib, 1),
        extraHostMemoryMib: round(r.extraHostMemoryMib, 2), samples: r.samples, loadAvg1: round(r.loadAvg1),
      })),
      hostFloor,
      qemu,
      gapRatioVsQemu: round(guestGap.p50 / qemuGapP50, 3),
      // Like for like: QEMU's gap at its switch against swapvisor's gap at each VM's own pause.
      ...(pauseGaps.length > 0 ? { gapAtPauseRatioVsQemu: round(percentile(pauseGaps, 50) / qemuGapP50, 3) } : {}),
      targets: TARGETS,
      meetsTargets: {
        guestGapMsP50: guestGap.p50 <= TARGETS.guestGapMsP50,
        guestGapMsP99: guestGap.p99 <= TARGETS.guestGapMsP99,
        // The same targets for the part of the gap the move itself causes (not a target of its own).
        ...(pauseGaps.length > 0 ? {
          guestGapAtPauseMsP50: percentile(pauseGaps, 50) <= TARGETS.guestGapMsP50,
          guestGapAtPauseMsP99: percentile(pauseGaps, 99) <= TARGETS.guestGapMsP99,
        } : {}),
        moveAndRetireMs: Math.max(...moveAndRetire) <= TARGETS.moveAndRetireMs64Vms,
        guestRamBytesCopied: bytesCopied === 0,
      },
      host: hostInfo(),
      timestamp: new Date().toISOString(),
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
