// The QEMU peer of a hot swap: local live migration of one heartbeat VM from one qemu-system-x86_64 process to
// another on the same host, guest RAM in a shared file that both map, with x-ignore-shared so RAM is not sent.
// It measures the guest-visible gap (from heartbeat arrival times on the host and from the guest's own TSC),
// QEMU's own downtime and total time, and the bytes QEMU transferred. It prints nothing on stdout; callers get
// the numbers from measureQemuMigration(). Every QEMU it starts it also stops, by PID, and it removes its files.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseSizeMib } from '../src/cli/size.js';
import { BenchRunError, BenchUsageError } from './errors.js';
import { atNormalPriority } from './priority.js';
import { hostInfo } from './host.js';
import { QmpClient } from './qmp.js';
import { locateQemu, qemuVersion } from './qemu.js';
import { percentile, round } from './stats.js';
import { wholeNumber, stringOptions } from './args.js';
import { SerialCapture, analyze, countBeats, parseStart } from './qemu-serial.js';

export const QEMU_MIGRATION_USAGE =
  'usage: npm run bench -- qemu-migration [--mem SIZE[,SIZE...]] [--runs N] [--period-us US]   (SIZE 2M..8G, default 256M; N 1..100, default 5; US 100..100000, default 1000)';

const DEFAULTS = { memMib: [256], runs: 5, periodUs: 1000 };
const MAX_RUNS = 100;
const MAX_MEM_MIB = 8192;
const GUEST = 'heartbeat';
/** How long the source runs before the migration starts, and the destination after it completes. */
const BEFORE_MS = 300;
const AFTER_MS = 300;
const START_TIMEOUT_MS = 30_000;
const QMP_TIMEOUT_MS = 10_000;
const MIGRATE_TIMEOUT_MS = 60_000;
const MIGRATE_POLL_MS = 2;
const STOP_TIMEOUT_MS = 5_000;
const STDERR_KEEP_CHARS = 4096;
const SHM_DIR = '/dev/shm';
export const RAM_BACKEND =
  'memory-backend-file,share=on on one /dev/shm file mapped by source and destination (memory-backend-memfd would give each QEMU its own memfd, so x-ignore-shared could not skip RAM)';

const REPO_ROOT_URL = new URL('../../', import.meta.url);
const repoRoot = fileURLToPath(REPO_ROOT_URL);
const inRepo = (p: string): string => fileURLToPath(new URL(p, REPO_ROOT_URL));

export interface Dist { p50: number; p99: number; max: number }

/** One migration. Times in ms, gaps already minus the period. */
export interface QemuMigrationRun {
  /**
   * Largest interval between consecutive heartbeat lines as the host received them, minus the period, over the
   * whole operation: from 100 ms after boot, through the destination QEMU's start-up and the migration, to 300 ms
   * after it completed. hostGapAtMsAfterMigrate says where it fell.
   */
  hostGapMs: number;
  /**
   * The same, around the switch only: the largest of the SWITCH_INTERVALS intervals from the last source heartbeat
   * on, minus the period. The guest's TSC is restored on the destination, so its stall may show a beat late.
   */
  hostSwitchGapMs: number;
  /** Largest TSC delta between consecutive heartbeats, in ms, minus the period. */
  tscGapMs: number;
  /** The largest TSC delta around the switch (same intervals as hostSwitchGapMs), minus the period. */
  tscSwitchGapMs: number;
  /** Where the largest host gap ended, in ms after the `migrate` command was sent (negative: before it). */
  hostGapAtMsAfterMigrate: number;
  /** Where the largest TSC gap ended, in heartbeats after the destination's first one (negative: on the source). */
  tscGapAtSeqAfterSwitch: number;
  /** When query-migrate first reported "completed", in ms after the `migrate` command was sent. */
  completedSeenMsAfterMigrate: number;
  /** The guest's own maxgap_us field on its last line (since boot, so it may include boot jitter). */
  guestReportedMaxGapMs: number;
  /** QEMU's query-migrate "downtime", "total-time" and "setup-time". */
  downtimeMs: number;
  totalTimeMs: number;
  setupTimeMs: number;
  /** query-migrate ram.transferred and ram.total. */
  ramTransferredBytes: number;
  ramTotalBytes: number;
  lastSourceSeq: number;
  firstDestSeq: number;
  linesSource: number;
  linesDest: number;
  seqLost: number;
  seqDuplicated: number;
  /** Heartbeat lines QEMU's serial output garbled (bytes dropped), skipped; a skipped beat can show as lost. */
  garbledLines: number;
}

export interface QemuMigrationResult {
  memMib: number;
  ramBytes: number;
  runs: number;
  periodUs: number;
  tscKhz: number;
  ramBackend: string;
  qemuVersion: string;
  hostGapMs: Dist;
  hostSwitchGapMs: Dist;
  tscGapMs: Dist;
  tscSwitchGapMs: Dist;
  downtimeMs: Dist;
  totalTimeMs: Dist;
  ramTransferredBytes: Dist;
  /** Sums over all runs; both must be 0 for the guest to have lost nothing. */
  seqLost: number;
  seqDuplicated: number;
  perRun: QemuMigrationRun[];
}

export interface QemuMigrationOptions {
  memMib: number;
  runs: number;
  periodUs: number;
  /** Progress lines; stderr by default. */
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes and files this module owns, so the normal path, failures and SIGINT/SIGTERM all clean up the same way.

interface Owned {
  qemus: Set<ChildProcess>;
  paths: Set<string>;
}

const owned: Owned = { qemus: new Set(), paths: new Set() };

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function killSync(child: ChildProcess): void {
  // INVARIANT: child.pid is a QEMU this module spawned; exitCode/signalCode stay null until it is reaped.
  if (child.pid !== undefined && alive(child)) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function cleanupSync(): void {
  for (const q of owned.qemus) killSync(q);
  for (const p of owned.paths) rmSync(p, { recursive: true, force: true });
  owned.paths.clear();
}

/** SIGTERM by PID, then SIGKILL if it has not exited within STOP_TIMEOUT_MS; resolves once it is reaped. */
async function stopQemu(child: ChildProcess): Promise<void> {
  if (alive(child) && child.pid !== undefined) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => killSync(child), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
  owned.qemus.delete(child);
}

// ---------------------------------------------------------------------------------------------------------------
// Serial capture: every complete line stamped with the host time its newline arrived.

interface Qemu {
  label: string;
  child: ChildProcess;
  serial: SerialCapture;
  stderrTail: () => string;
  /** Rejects when QEMU exits while we still need it. */
  exited: Promise<never>;
}

function startQemu(binary: string, args: string[], label: string): Qemu {
  const child = spawn(...atNormalPriority(binary, args), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  owned.qemus.add(child);
  const serial = new SerialCapture(child.stdout!);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => { stderr = (stderr + c).slice(-STDERR_KEEP_CHARS); });
  const stderrTail = (): string => stderr.trim().split('\n').slice(-3).join(' | ');
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new BenchRunError(`qemu-migration: cannot start ${label} QEMU: ${e.message}`, { cause: e })));
    child.once('exit', (code, signal) =>
      reject(new BenchRunError(`qemu-migration: ${label} QEMU exited (${signal ?? `code ${code}`}) while still needed; stderr: ${stderrTail()}`)));
  });
  exited.catch(() => undefined); // Only awaited through race(); never an unhandled rejection.
  return { label, child, serial, stderrTail, exited };
}

/** Waits for `p`, failing early if either QEMU exits or `timeoutMs` passes. */
async function race<T>(what: string, p: Promise<T>, timeoutMs: number, ...qemus: Qemu[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchRunError(`qemu-migration: timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout, ...qemus.map((q) => q.exited)]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Heartbeat parsing and the gap analysis.

function qemuArgs(o: { kernel: string; memMib: number; periodUs: number; shmFile: string; qmpSock: string; incoming: boolean }): string[] {
  return [
    '-M', 'microvm,memory-backend=mem', '-enable-kvm', '-cpu', 'host,-arch-capabilities',
    '-m', `${o.memMib}M`, '-smp', '1', '-nodefaults', '-no-user-config', '-nographic',
    '-object', `memory-backend-file,id=mem,size=${o.memMib}M,mem-path=${o.shmFile},share=on`,
    '-serial', 'stdio',
    '-kernel', o.kernel, '-append', `period_us=${o.periodUs}`,
    '-qmp', `unix:${o.qmpSock},server=on,wait=off`,
    ...(o.incoming ? ['-incoming', 'defer'] : []),
  ];
}

interface MigrateInfo {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  'error-desc'?: string;
  ram?: { transferred?: number; total?: number };
}

const IGNORE_SHARED = { capabilities: [{ capability: 'x-ignore-shared', state: true }] };

async function migrateOnce(binary: string, kernel: string, memMib: number, periodUs: number, log: (line: string) => void): Promise<{ run: QemuMigrationRun; tscKhz: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-qemu-mig-'));
  owned.paths.add(dir);
  const shmFile = path.join(SHM_DIR, `swapvisor-qemu-mig-${process.pid}-${randomUUID().slice(0, 8)}`);
  owned.paths.add(shmFile);
  closeSync(openSync(shmFile, 'wx', 0o600));
  const migSock = path.join(dir, 'mig.sock');
  const common = { kernel, memMib, periodUs, shmFile };
  const qmps: QmpClient[] = [];
  const qemus: Qemu[] = [];
  try {
    const src = startQemu(binary, qemuArgs({ ...common, qmpSock: path.join(dir, 'src-qmp.sock'), incoming: false }), 'source');
    qemus.push(src);
    const beforeBeats = Math.ceil((BEFORE_MS * 1000) / periodUs);
    await race('the source heartbeats', src.serial.until(() => countBeats(src.serial.lines) >= beforeBeats), START_TIMEOUT_MS, src);
    const start = parseStart(src.serial.lines);
    if (!start) throw new BenchRunError('qemu-migration: the source never printed "heartbeat start period_us=… tsc_khz=…"');
    if (start.periodUs !== periodUs) throw new BenchRunError(`qemu-migration: guest runs period_us=${start.periodUs}, asked for ${periodUs}`);
    if (!(start.tscKhz > 0)) throw new BenchRunError('qemu-migration: guest reported tsc_khz=0');

    const dst = startQemu(binary, qemuArgs({ ...common, qmpSock: path.join(dir, 'dst-qmp.sock'), incoming: true }), 'destination');
    qemus.push(dst);
    const [srcQmp, dstQmp] = await race('both QMP sockets', Promise.all([
      QmpClient.connect(path.join(dir, 'src-qmp.sock'), 'source', QMP_TIMEOUT_MS, () => alive(src.child)),
      QmpClient.connect(path.join(dir, 'dst-qmp.sock'), 'destination', QMP_TIMEOUT_MS, () => alive(dst.child)),
    ]), QMP_TIMEOUT_MS, src, dst);
    qmps.push(srcQmp, dstQmp);
    await srcQmp.execute('migrate-set-capabilities', IGNORE_SHARED);
    await dstQmp.execute('migrate-set-capabilities', IGNORE_SHARED);
    await dstQmp.execute('migrate-incoming', { uri: `unix:${migSock}` });
    // Keep the source running a full BEFORE_MS on top of the destination's start-up, as a swap would.
    const seen = countBeats(src.serial.lines);
    await race('more source heartbeats', src.serial.until(() => countBeats(src.serial.lines) >= seen + beforeBeats), START_TIMEOUT_MS, src, dst);

    const tMigrate = performance.now();
    await srcQmp.execute('migrate', { uri: `unix:${migSock}` });
    const deadline = Date.now() + MIGRATE_TIMEOUT_MS;
    let info: MigrateInfo;
    let tCompleted: number;
    for (;;) {
      info = (await race('query-migrate', srcQmp.execute('query-migrate'), QMP_TIMEOUT_MS, src, dst)) as MigrateInfo;
      tCompleted = performance.now();
      if (info.status === 'completed') break;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new BenchRunError(`qemu-migration: migration ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}; destination stderr: ${dst.stderrTail()}`);
      }
      if (Date.now() > deadline) throw new BenchRunError(`qemu-migration: migration still "${info.status}" after ${MIGRATE_TIMEOUT_MS} ms`);
      await sleep(MIGRATE_POLL_MS);
    }
    const firstDst = countBeats(dst.serial.lines);
    const afterBeats = Math.ceil((AFTER_MS * 1000) / periodUs);
    await race('destination heartbeats', dst.serial.until(() => countBeats(dst.serial.lines) >= firstDst + afterBeats), START_TIMEOUT_MS, dst);
    const dstStatus = (await dstQmp.execute('query-status')) as { status?: string };
    if (dstStatus.status !== 'running') throw new BenchRunError(`qemu-migration: destination is "${dstStatus.status}" after the migration, not running`);

    for (const q of qmps) q.close();
    qmps.length = 0;
    await Promise.all(qemus.map((q) => stopQemu(q.child)));
    const a = analyze(src.serial, dst.serial, periodUs, start.tscKhz);
    const ram = info.ram ?? {};
    const run: QemuMigrationRun = {
      hostGapMs: round(a.hostGapMs, 3),
      hostSwitchGapMs: round(a.hostSwitchGapMs, 3),
      tscGapMs: round(a.tscGapMs, 3),
      tscSwitchGapMs: round(a.tscSwitchGapMs, 3),
      hostGapAtMsAfterMigrate: round(a.hostGapEndT - tMigrate, 3),
      tscGapAtSeqAfterSwitch: a.tscGapEndSeq - a.firstDestSeq,
      completedSeenMsAfterMigrate: round(tCompleted - tMigrate, 3),
      guestReportedMaxGapMs: round(a.guestReportedMaxGapMs, 3),
      downtimeMs: info.downtime ?? Number.NaN,
      totalTimeMs: info['total-time'] ?? Number.NaN,
      setupTimeMs: info['setup-time'] ?? Number.NaN,
      ramTransferredBytes: ram.transferred ?? Number.NaN,
      ramTotalBytes: ram.total ?? Number.NaN,
      lastSourceSeq: a.lastSourceSeq,
      firstDestSeq: a.firstDestSeq,
      linesSource: a.linesSource,
      linesDest: a.linesDest,
      seqLost: a.seqLost,
      seqDuplicated: a.seqDuplicated,
      garbledLines: a.garbledLines.length,
    };
    for (const g of a.garbledLines) log(`qemu-migration: WARNING: garbled heartbeat line skipped: ${g}`);
    if (run.seqLost > 0 || run.seqDuplicated > 0) log(`qemu-migration: WARNING: ${run.seqLost} heartbeat(s) lost, ${run.seqDuplicated} duplicated across the migration`);
    return { run, tscKhz: start.tscKhz };
  } finally {
    for (const q of qmps) q.close();
    for (const q of qemus) killSync(q.child);
    await Promise.all(qemus.map((q) => stopQemu(q.child)));
    rmSync(shmFile, { force: true });
    owned.paths.delete(shmFile);
    rmSync(dir, { recursive: true, force: true });
    owned.paths.delete(dir);
  }
}

function dist(values: readonly number[]): Dist {
  return { p50: round(percentile(values, 50), 3), p99: round(percentile(values, 99), 3), max: round(Math.max(...values), 3) };
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupSync();
  // Exit only if nobody else (e.g. a benchmark that called us) wants to handle the signal.
  if (process.listenerCount(signal) === 0) process.exit(signal === 'SIGINT' ? 130 : 143);
}

/**
 * Runs `runs` local live migrations of one heartbeat VM with `memMib` MiB of RAM under QEMU microvm and returns
 * their numbers. Other benchmarks call this to compare a hot swap with QEMU in the same run.
 */
export async function measureQemuMigration(opts: QemuMigrationOptions): Promise<QemuMigrationResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const kernel = inRepo(`guest/build/${GUEST}.elf`);
  if (!existsSync(kernel)) throw new BenchRunError(`qemu-migration: guest/build/${GUEST}.elf is missing; build it first (make -C guest)`);
  if (!existsSync(SHM_DIR)) throw new BenchRunError(`qemu-migration: ${SHM_DIR} is missing; the shared RAM file needs a tmpfs there`);
  const binary = locateQemu(log);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const perRun: QemuMigrationRun[] = [];
    let tscKhz = 0;
    for (let i = 1; i <= opts.runs; i++) {
      const r = await migrateOnce(binary, kernel, opts.memMib, opts.periodUs, log);
      perRun.push(r.run);
      tscKhz = r.tscKhz;
      log(`qemu-migration: ${opts.memMib} MiB run ${i}/${opts.runs}: host gap ${r.run.hostGapMs} ms, TSC gap ${r.run.tscGapMs} ms, ` +
        `QEMU downtime ${r.run.downtimeMs} ms, total ${r.run.totalTimeMs} ms, RAM transferred ${r.run.ramTransferredBytes} B`);
    }
    const pick = (k: keyof QemuMigrationRun): number[] => perRun.map((r) => r[k]);
    return {
      memMib: opts.memMib,
      ramBytes: opts.memMib * 1024 * 1024,
      runs: opts.runs,
      periodUs: opts.periodUs,
      tscKhz,
      ramBackend: RAM_BACKEND,
      qemuVersion: qemuVersion(binary),
      hostGapMs: dist(pick('hostGapMs')),
      hostSwitchGapMs: dist(pick('hostSwitchGapMs')),
      tscGapMs: dist(pick('tscGapMs')),
      tscSwitchGapMs: dist(pick('tscSwitchGapMs')),
      downtimeMs: dist(pick('downtimeMs')),
      totalTimeMs: dist(pick('totalTimeMs')),
      ramTransferredBytes: dist(pick('ramTransferredBytes')),
      seqLost: pick('seqLost').reduce((x, y) => x + y, 0),
      seqDuplicated: pick('seqDuplicated').reduce((x, y) => x + y, 0),
      perRun,
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    cleanupSync();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// `npm run bench -- qemu-migration`

export interface QemuMigrationArgs { memMib: number[]; runs: number; periodUs: number }

export function parseQemuMigrationArgs(argv: string[]): QemuMigrationArgs {
  const values = stringOptions(argv, ['mem', 'runs', 'period-us'], QEMU_MIGRATION_USAGE);
  let memMib = DEFAULTS.memMib;
  if (values.mem !== undefined) {
    memMib = values.mem.split(',').map((part) => {
      let mib: number;
      try {
        mib = parseSizeMib(part, '--mem');
      } catch (e) {
        throw new BenchUsageError((e as Error).message);
      }
      if (mib < 2 || mib > MAX_MEM_MIB) throw new BenchUsageError(`--mem sizes must be from 2M to ${MAX_MEM_MIB}M, not "${part}"`);
      return mib;
    });
  }
  return {
    memMib,
    runs: wholeNumber('runs', values.runs, DEFAULTS.runs, 1, MAX_RUNS),
    periodUs: wholeNumber('period-us', values['period-us'], DEFAULTS.periodUs, 100, 100_000),
  };
}

export async function runQemuMigration(argv: string[], log: (line: string) => void): Promise<Record<string, unknown>> {
  const a = parseQemuMigrationArgs(argv);
  const results: QemuMigrationResult[] = [];
  for (const memMib of a.memMib) {
    log(`qemu-migration: ${a.runs} run(s) with ${memMib} MiB of guest RAM`);
    results.push(await measureQemuMigration({ memMib, runs: a.runs, periodUs: a.periodUs, log }));
  }
  return {
    bench: 'qemu-migration',
    runs: a.runs,
    periodUs: a.periodUs,
    guest: { name: GUEST, cmdline: `period_us=${a.periodUs}`, vcpus: 1 },
    method: 'local live migration over a unix socket, destination started with -incoming defer, x-ignore-shared on both sides',
    results,
    host: hostInfo(),
    timestamp: new Date().toISOString(),
  };
}
