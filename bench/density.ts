// The density benchmark: how many heartbeat VMs one swapvisor daemon creates per second, how long until all
// of them print their first heartbeat, and what each costs the daemon in memory beyond its guest RAM; QEMU
// microvm, one process per VM, is the peer for the same guest ELF in the same run. It prints one JSON object
// on stdout and progress on stderr. Every daemon and QEMU it starts it also stops, by PID.

import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ApiCallError, ApiClient } from '../src/cli/api-client.js';
import { BenchRunError } from './errors.js';
import { hostInfo } from './host.js';
import { type ProcMemory, procCpuSeconds, procPss, procStatus } from './procfs.js';
import { locateQemu, qemuVersion } from './qemu.js';
import { round, summarize } from './stats.js';
import { inRepo, memArg, repoRoot, wholeNumber, stringOptions } from './args.js';
import { processRunning } from '../src/sys/process-state.js';

export const DENSITY_USAGE =
  'usage: npm run bench -- density [--vms N] [--mem SIZE] [--period-ms MS] [--concurrency C]   (N 1..500, default 100; SIZE 2M..1G, default 16M; MS 1..10000, default 100; C 1..16, default 4)';

const DEFAULTS = { vms: 100, memMib: 16, periodMs: 100, concurrency: 4 };
const MAX_VMS = 500;
const MAX_MEM_MIB = 1024;
const GUEST = 'heartbeat';
/** The daemon's own share of its budget on top of the VMs' RAM. */
const BUDGET_SLACK_MIB = 512;
/** Let the daemon settle before the idle reading, and the VMs run before the loaded one. */
const IDLE_SETTLE_MS = 1_000;
const RUN_SETTLE_MS = 2_000;
const POLL_INTERVAL_MS = 20;
const LOG_FETCH_CONCURRENCY = 4;
const LOG_TAIL_BYTES = 4096;
const QEMU_MAX = 10;
const QEMU_FIRST_HB_TIMEOUT_MS = 30_000;
const DAEMON_STOP_TIMEOUT_MS = 120_000;
const PROGRESS_EVERY_MS = 1_000;
const TARGETS = { vmsPerSec: 50, overheadPerVmMib: 8 };
/** Any heartbeat line means "hb 1" was printed (seq starts at 1), even if it has scrolled out of the tail. */
const HB_LINE = /(?:^|\n)hb \d+ /;


export interface DensityArgs { vms: number; memMib: number; periodMs: number; concurrency: number }

export function parseDensityArgs(argv: string[]): DensityArgs {
  const values = stringOptions(argv, ['vms', 'mem', 'period-ms', 'concurrency'], DENSITY_USAGE);
  const memMib = memArg(values.mem, DEFAULTS.memMib, MAX_MEM_MIB);
  return {
    vms: wholeNumber('vms', values.vms, DEFAULTS.vms, 1, MAX_VMS),
    memMib,
    periodMs: wholeNumber('period-ms', values['period-ms'], DEFAULTS.periodMs, 1, 10_000),
    concurrency: wholeNumber('concurrency', values.concurrency, DEFAULTS.concurrency, 1, 16),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function memMib(m: ProcMemory): Record<string, number> {
  return { vmRss: round(m.vmRssMib), rssAnon: round(m.rssAnonMib), rssFile: round(m.rssFileMib), rssShmem: round(m.rssShmemMib) };
}

const vmmMib = (m: ProcMemory): number => m.rssAnonMib + m.rssFileMib;

/** What the bench has started and must stop, whatever happens: read by the normal path and by SIGINT. */
interface Owned {
  stateDir?: string;
  daemonPid?: number;
  qemus: ChildProcess[];
}

/** True if pid is still the daemon of our state dir (not a recycled pid), judged by its command line. */
function isOurDaemon(pid: number, stateDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(stateDir);
  } catch {
    return false;
  }
}

function cliArgs(...args: string[]): string[] {
  return [inRepo('bin/swapvisor.cjs'), ...args];
}

/** Stops the daemon with `daemon stop`, SIGKILLs it by PID if that fails, then removes the state dir. Synchronous for SIGINT. */
function cleanupDaemonSync(owned: Owned, log: (line: string) => void): void {
  const { stateDir, daemonPid } = owned;
  if (stateDir === undefined) return;
  if (daemonPid !== undefined && processRunning(daemonPid)) {
    log(`density: stopping daemon pid ${daemonPid}`);
    const r = spawnSync(process.execPath, cliArgs('daemon', 'stop', '--state-dir', stateDir), {
      cwd: repoRoot, encoding: 'utf8', timeout: DAEMON_STOP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.status !== 0 && isOurDaemon(daemonPid, stateDir)) {
      log(`density: \`daemon stop\` failed (${r.error?.message ?? `status ${r.status}`}: ${(r.stderr ?? '').trim().split('\n').pop() ?? ''}); killing pid ${daemonPid}`);
      try {
        process.kill(daemonPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  owned.daemonPid = undefined;
  rmSync(stateDir, { recursive: true, force: true });
  owned.stateDir = undefined;
}

function killQemus(owned: Owned): void {
  for (const q of owned.qemus) {
    // INVARIANT: q.pid is a QEMU we spawned; exitCode/signalCode stay null until it has been reaped.
    if (q.pid !== undefined && q.exitCode === null && q.signalCode === null) {
      try {
        process.kill(q.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

function startDaemon(stateDir: string, budgetMib: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, cliArgs('daemon', 'start', '--state-dir', stateDir, '--mem-budget', `${budgetMib}M`),
      { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        const pid = /running, pid (\d+)/.exec(stdout)?.[1];
        if (err || pid === undefined) {
          const why = (stderr || stdout || (err?.message ?? '')).trim().split('\n').slice(-3).join(' | ');
          reject(new BenchRunError(`density: \`swapvisor daemon start\` failed: ${why}; see ${path.join(stateDir, 'daemon.log')}`));
        } else {
          resolve(Number(pid));
        }
      });
  });
}

interface VmListEntry { name: string; state: string; console: { bytesOut: number }; exit: { reason: string; detail: string | null } | null }

function describeApiError(e: unknown): string {
  if (e instanceof ApiCallError) return `HTTP ${e.status} ${e.code}: ${e.message}`;
  return (e as Error).message;
}

/** POSTs every VM with `concurrency` requests in flight; createdAt (ms after t0) is filled as each 201 arrives. Ends early on `stop`. */
async function createAll(api: ApiClient, names: string[], a: DensityArgs, t0: number, createdAt: Map<string, number>, latency: number[],
  stop: { requested: boolean }): Promise<number> {
  let next = 0;
  let lastCreatedMs = 0;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !stop.requested && next < names.length) {
      const name = names[next++]!;
      const body = { name, guest: GUEST, memMib: a.memMib, cmdline: `period_us=${a.periodMs * 1000}`, autostart: true };
      const sent = performance.now();
      try {
        const r = await api.call('POST', '/v1/vms', body);
        if (r.status !== 201) {
          let detail = r.body.slice(0, 300);
          try {
            const e = (JSON.parse(r.body) as { error?: { code?: string; message?: string } }).error;
            if (e) detail = `${e.code}: ${e.message}`;
          } catch {
            // not JSON; keep the raw text
          }
          throw new BenchRunError(`density: POST /v1/vms for ${name} (the ${createdAt.size + 1}th) answered HTTP ${r.status} ${detail}`);
        }
      } catch (e) {
        failure ??= e instanceof BenchRunError ? e : new BenchRunError(`density: POST /v1/vms for ${name} failed: ${describeApiError(e)}`, { cause: e });
        return;
      }
      const now = performance.now();
      latency.push(now - sent);
      createdAt.set(name, now - t0);
      lastCreatedMs = Math.max(lastCreatedMs, now - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.concurrency, names.length) }, worker));
  if (failure) throw failure;
  return lastCreatedMs;
}

/**
 * Polls until every VM has printed a heartbeat line: one GET /v1/vms per tick, then the console log only of
 * VMs whose bytesOut grew since they were last looked at. Resolves with ms after t0 at which each was seen.
 */
async function waitFirstHeartbeats(api: ApiClient, names: string[], t0: number, createsDone: () => boolean, timeoutMs: number,
  log: (line: string) => void, createdAt: Map<string, number>, stop: { requested: boolean }): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const checkedBytes = new Map<string, number>();
  let lastProgress = performance.now();
  let logFetches = 0;
  let listCalls = 0;
  while (seen.size < names.length) {
    if (stop.requested) throw new BenchRunError('density: heartbeat polling stopped because creating the VMs failed');
    const tick = performance.now();
    if (tick - t0 > timeoutMs) {
      const missing = names.filter((n) => !seen.has(n));
      throw new BenchRunError(`density: ${missing.length} of ${names.length} VMs printed no heartbeat within ${timeoutMs / 1000} s of the first POST (first few: ${missing.slice(0, 5).join(', ')}); their consoles are under the state dir`);
    }
    const list = (await api.json<{ vms: VmListEntry[] }>('GET', '/v1/vms')).vms;
    listCalls++;
    const dead = list.find((v) => v.state === 'crashed' || v.state === 'stopped');
    if (dead) throw new BenchRunError(`density: VM ${dead.name} is ${dead.state} before its first heartbeat: ${dead.exit?.reason ?? ''} ${dead.exit?.detail ?? ''}`.trim());
    const candidates = list.filter((v) => !seen.has(v.name) && v.console.bytesOut > (checkedBytes.get(v.name) ?? 0));
    let i = 0;
    await Promise.all(Array.from({ length: Math.min(LOG_FETCH_CONCURRENCY, candidates.length) }, async () => {
      while (i < candidates.length) {
        const v = candidates[i++]!;
        checkedBytes.set(v.name, v.console.bytesOut);
        const text = await api.text(`/v1/vms/${v.name}/console/log?tailBytes=${LOG_TAIL_BYTES}`);
        logFetches++;
        if (HB_LINE.test(text)) seen.set(v.name, performance.now() - t0);
      }
    }));
    const now = performance.now();
    if (now - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = now;
      log(`density: ${((now - t0) / 1000).toFixed(1)} s: ${createdAt.size}/${names.length} created${createsDone() ? ' (all)' : ''}, ${seen.size} heartbeating`);
    }
    const wait = POLL_INTERVAL_MS - (performance.now() - tick);
    if (wait > 0) await sleep(wait);
  }
  log(`density: all ${names.length} heartbeating after ${listCalls} list calls and ${logFetches} console-log reads`);
  return seen;
}

interface SwapvisorResult {
  vmsPerSec: number;
  createWallMs: number;
  createLatencyMs: ReturnType<typeof summarize>;
  allFirstHeartbeatMs: number;
  firstHeartbeatAfterCreateMsP50: number;
  before: ProcMemory;
  after: ProcMemory;
  threadsBefore: number;
  threads: number;
  cpuSeconds: number;
  runWallSec: number;
}

async function measureSwapvisor(a: DensityArgs, owned: Owned, log: (line: string) => void): Promise<SwapvisorResult> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-density-'));
  owned.stateDir = stateDir;
  const budgetMib = a.vms * a.memMib + BUDGET_SLACK_MIB;
  log(`density: starting a daemon in ${stateDir} with a budget of ${budgetMib} MiB`);
  const pid = await startDaemon(stateDir, budgetMib);
  owned.daemonPid = pid;
  const api = new ApiClient(stateDir);
  const instance = await api.json<{ pid: number }>('GET', '/v1/instance');
  if (instance.pid !== pid) throw new BenchRunError(`density: the daemon says its pid is ${instance.pid}, \`daemon start\` said ${pid}`);
  await sleep(IDLE_SETTLE_MS);
  const before = procStatus(pid);
  const cpuBefore = procCpuSeconds(pid);
  log(`density: daemon pid ${pid} idle: RssAnon ${before.rssAnonMib.toFixed(1)} MiB, RssFile ${before.rssFileMib.toFixed(1)} MiB, ${before.threads} threads`);

  const names = Array.from({ length: a.vms }, (_, i) => `d${String(i + 1).padStart(3, '0')}`);
  const createdAt = new Map<string, number>();
  const latency: number[] = [];
  log(`density: creating ${a.vms} VMs (${a.memMib} MiB, period ${a.periodMs} ms), ${a.concurrency} request(s) in flight`);
  const t0 = performance.now();
  let createsDone = false;
  const stop = { requested: false };
  const creating = createAll(api, names, a, t0, createdAt, latency, stop);
  creating.then(() => { createsDone = true; }, () => { createsDone = true; });
  // Both run at once. Whichever fails first ends the other (the poller checks `stop` every tick).
  const timeoutMs = 60_000 + a.vms * 500;
  const polling = waitFirstHeartbeats(api, names, t0, () => createsDone, timeoutMs, log, createdAt, stop);
  polling.catch(() => { stop.requested = true; }); // the failure itself is thrown by `await polling` below
  let createWallMs: number;
  try {
    createWallMs = await creating;
  } catch (e) {
    stop.requested = true;
    await polling.catch(() => undefined);
    throw e;
  }
  const seen = await polling;
  const allFirstHeartbeatMs = Math.max(...seen.values());
  const afterCreate = names.map((n) => seen.get(n)! - createdAt.get(n)!);
  log(`density: ${a.vms} created in ${createWallMs.toFixed(0)} ms, all heartbeating after ${allFirstHeartbeatMs.toFixed(0)} ms; letting them run ${RUN_SETTLE_MS / 1000} s`);

  await sleep(RUN_SETTLE_MS);
  const after = procStatus(pid);
  const cpuSeconds = procCpuSeconds(pid) - cpuBefore;
  const runWallSec = (performance.now() - t0) / 1000;
  const list = (await api.json<{ vms: VmListEntry[] }>('GET', '/v1/vms')).vms;
  const notRunning = names.map((n) => list.find((v) => v.name === n)).filter((v) => v === undefined || v.state !== 'running');
  if (notRunning.length > 0 || list.length !== a.vms) {
    const sample = notRunning.slice(0, 5).map((v) => (v ? `${v.name} ${v.state}${v.exit ? ` (${v.exit.reason}${v.exit.detail ? `: ${v.exit.detail}` : ''})` : ''}` : 'missing')).join(', ');
    throw new BenchRunError(`density: ${notRunning.length} of ${a.vms} VMs are not running ${RUN_SETTLE_MS / 1000} s after all heartbeated (${sample}); the daemon lists ${list.length}`);
  }
  log(`density: all ${a.vms} running: RssAnon ${after.rssAnonMib.toFixed(1)} MiB, RssFile ${after.rssFileMib.toFixed(1)} MiB, RssShmem ${after.rssShmemMib.toFixed(1)} MiB, ${after.threads} threads`);
  return {
    vmsPerSec: a.vms / (createWallMs / 1000),
    createWallMs,
    createLatencyMs: summarize(latency),
    allFirstHeartbeatMs,
    firstHeartbeatAfterCreateMsP50: summarize(afterCreate).p50,
    before, after, threadsBefore: before.threads, threads: after.threads, cpuSeconds, runWallSec,
  };
}

interface QemuResult { vms: number; overheadMib: number[]; pssMib: number[]; startsPerSec: number; firstHbMs: number[] }

/** Spawns one QEMU and resolves once it printed a heartbeat line, with ms from spawn; it keeps running. */
function startQemu(binary: string, args: string[], owned: Owned): Promise<{ child: ChildProcess; firstHbMs: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(binary, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    owned.qemus.push(child);
    let out = '';
    let err = '';
    let done = false;
    const finish = (e?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve({ child, firstHbMs: performance.now() - t });
    };
    const timer = setTimeout(() => finish(new BenchRunError(`density: QEMU pid ${child.pid} printed no heartbeat within ${QEMU_FIRST_HB_TIMEOUT_MS / 1000} s; stdout: ${JSON.stringify(out.slice(-200))}`)), QEMU_FIRST_HB_TIMEOUT_MS);
    // Keep draining both pipes for as long as it runs so that it never blocks on a full pipe.
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (done) return;
      out = (out + d).slice(-8192);
      if (HB_LINE.test(out)) finish();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-2048); });
    child.on('error', (e) => finish(new BenchRunError(`density: cannot start ${binary}: ${e.message}`, { cause: e })));
    child.on('exit', (code, signal) => finish(new BenchRunError(`density: QEMU exited (${signal ?? `code ${code}`}) before its first heartbeat; stderr: ${err.trim().split('\n').slice(-3).join(' | ')}`)));
  });
}

async function measureQemu(a: DensityArgs, owned: Owned, log: (line: string) => void): Promise<QemuResult & { version: string }> {
  const binary = locateQemu(log);
  const k = Math.min(a.vms, QEMU_MAX);
  const args = [
    '-M', 'microvm,memory-backend=mem', '-enable-kvm', '-cpu', 'host,-arch-capabilities',
    '-m', `${a.memMib}M`, '-smp', '1',
    '-object', `memory-backend-memfd,id=mem,size=${a.memMib}M,share=on`,
    '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
    '-kernel', inRepo(`guest/build/${GUEST}.elf`), '-append', `period_us=${a.periodMs * 1000}`,
  ];
  log(`density: starting ${k} QEMU microvms one after another`);
  const t0 = performance.now();
  const started: Array<{ child: ChildProcess; firstHbMs: number }> = [];
  for (let i = 0; i < k; i++) started.push(await startQemu(binary, args, owned));
  const startWallMs = performance.now() - t0;
  log(`density: ${k} QEMUs heartbeating after ${startWallMs.toFixed(0)} ms; letting them run ${RUN_SETTLE_MS / 1000} s`);
  await sleep(RUN_SETTLE_MS);
  const overheadMib: number[] = [];
  const pssMib: number[] = [];
  for (const { child } of started) {
    if (child.exitCode !== null || child.signalCode !== null) throw new BenchRunError(`density: QEMU pid ${child.pid} exited while running`);
    overheadMib.push(vmmMib(procStatus(child.pid!)));
    const p = procPss(child.pid!);
    pssMib.push(p.pssAnonMib + p.pssFileMib);
  }
  return { vms: k, overheadMib, pssMib, startsPerSec: k / (startWallMs / 1000), firstHbMs: started.map((s) => s.firstHbMs), version: qemuVersion(binary) };
}

function checkBuilt(): void {
  const needed: Array<[string, string]> = [
    ['dist/src/cli/main.js', 'npm run setup'],
    ['bin/swapvisor.cjs', 'npm run setup'],
    [`guest/build/${GUEST}.elf`, 'make -C guest'],
  ];
  for (const [file, fix] of needed) {
    if (!existsSync(inRepo(file))) throw new BenchRunError(`density: ${file} is missing; build it first (${fix})`);
  }
}

export async function runDensity(argv: string[], log: (line: string) => void): Promise<Record<string, unknown>> {
  const a = parseDensityArgs(argv);
  checkBuilt();
  const owned: Owned = { qemus: [] };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`density: ${sig}: cleaning up`);
    killQemus(owned);
    cleanupDaemonSync(owned, log);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let sv: SwapvisorResult;
    try {
      sv = await measureSwapvisor(a, owned, log);
    } finally {
      // Stop the daemon before QEMU runs, so that the 100 VMs' heartbeats do not load the peer's measurement.
      cleanupDaemonSync(owned, log);
    }
    let qm: Awaited<ReturnType<typeof measureQemu>>;
    try {
      qm = await measureQemu(a, owned, log);
    } finally {
      killQemus(owned);
    }
    const overheadPerVmMib = (vmmMib(sv.after) - vmmMib(sv.before)) / a.vms;
    const qemuP50 = summarize(qm.overheadMib).p50;
    return {
      bench: 'density',
      vms: a.vms,
      memMib: a.memMib,
      periodMs: a.periodMs,
      concurrency: a.concurrency,
      vmsPerSec: round(sv.vmsPerSec, 1),
      createWallMs: round(sv.createWallMs, 0),
      createLatencyMs: { p50: round(sv.createLatencyMs.p50), p90: round(sv.createLatencyMs.p90), max: round(sv.createLatencyMs.max) },
      allFirstHeartbeatMs: round(sv.allFirstHeartbeatMs, 0),
      firstHeartbeatAfterCreateMsP50: round(sv.firstHeartbeatAfterCreateMsP50, 0),
      rssBeforeMib: memMib(sv.before),
      rssAfterMib: memMib(sv.after),
      overheadPerVmMib: round(overheadPerVmMib, 3),
      guestRamTouchedPerVmMib: round((sv.after.rssShmemMib - sv.before.rssShmemMib) / a.vms, 3),
      threadsBefore: sv.threadsBefore,
      threads: sv.threads,
      cpuSecondsDuringRun: round(sv.cpuSeconds),
      runWallSec: round(sv.runWallSec),
      qemu: {
        vms: qm.vms,
        overheadPerVmMibP50: round(qemuP50, 3),
        overheadPerVmMibMin: round(Math.min(...qm.overheadMib), 3),
        overheadPerVmMibMax: round(Math.max(...qm.overheadMib), 3),
        pssAnonFilePerVmMibP50: round(summarize(qm.pssMib).p50, 3),
        startsPerSec: round(qm.startsPerSec, 1),
        firstHeartbeatMsP50: round(summarize(qm.firstHbMs).p50, 0),
        version: qm.version,
      },
      overheadRatioVsQemu: round(overheadPerVmMib / qemuP50, 3),
      targets: TARGETS,
      meetsTargets: { vmsPerSec: sv.vmsPerSec >= TARGETS.vmsPerSec, overheadPerVmMib: overheadPerVmMib <= TARGETS.overheadPerVmMib },
      host: hostInfo(),
      timestamp: new Date().toISOString(),
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
