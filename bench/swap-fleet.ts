// The swap bench's fleet: the daemon it starts (and always stops, by PID) and the heartbeat VMs in it, read back
// through the API. Split from swap.ts, which measures the swaps.

import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiCallError, type ApiClient } from '../src/cli/api-client.js';
import { BenchRunError } from './errors.js';
import { atNormalPriority } from './priority.js';
import { type Beat, parseBeats, parseStart } from './heartbeat-log.js';
import { inRepo, repoRoot } from './args.js';

export const GUEST = 'heartbeat';
export const DAEMON_CPUS = '0-1';
const FIRST_HB_TIMEOUT_MS = 120_000;
const API_CONCURRENCY = 4;
const SEQ_TAIL_BYTES = 4096;
const DAEMON_STOP_TIMEOUT_MS = 120_000;

export interface FleetArgs { memMib: number; periodUs: number }

// ---------------------------------------------------------------------------------------------------------------
// Daemons this bench owns. After a swap the owner of the state dir is a new process; every instance pid seen is
// remembered so that cleanup can SIGKILL whichever is still alive if `daemon stop` fails.

export interface Owned { stateDir?: string; pids: Set<number> }

/** True if pid is still an instance of our state dir (A's `daemon start`, or `daemon receive` after a swap). */
function isOurDaemon(pid: number, stateDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(stateDir);
  } catch {
    return false;
  }
}

const cliArgs = (...args: string[]): string[] => [inRepo('bin/swapvisor.cjs'), ...args];

export function cleanupSync(owned: Owned, log: (line: string) => void): void {
  const { stateDir } = owned;
  if (stateDir === undefined) return;
  if ([...owned.pids].some((p) => isOurDaemon(p, stateDir))) {
    log(`swap: stopping the daemon of ${stateDir}`);
    const r = spawnSync(process.execPath, cliArgs('daemon', 'stop', '--state-dir', stateDir), {
      cwd: repoRoot, encoding: 'utf8', timeout: DAEMON_STOP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.status !== 0) log(`swap: \`daemon stop\` failed (${r.error?.message ?? `status ${r.status}`}: ${(r.stderr ?? '').trim().split('\n').pop() ?? ''})`);
    for (const pid of owned.pids) {
      if (!isOurDaemon(pid, stateDir)) continue;
      log(`swap: pid ${pid} still runs; killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  owned.pids.clear();
  rmSync(stateDir, { recursive: true, force: true });
  owned.stateDir = undefined;
}

/** Starts a daemon in `stateDir` on both CPUs, at normal priority; resolves with its pid. */
export function startDaemon(stateDir: string, budgetMib: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(...atNormalPriority(process.execPath, cliArgs('daemon', 'start', '--state-dir', stateDir, '--cpus', DAEMON_CPUS, '--mem-budget', `${budgetMib}M`)),
      { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        const pid = /running, pid (\d+)/.exec(stdout)?.[1];
        if (err || pid === undefined) {
          const why = (stderr || stdout || (err?.message ?? '')).trim().split('\n').slice(-3).join(' | ');
          reject(new BenchRunError(`swap: \`swapvisor daemon start\` failed: ${why}; see ${path.join(stateDir, 'daemon.log')}`));
        } else {
          resolve(Number(pid));
        }
      });
  });
}

export function describeApiError(e: unknown): string {
  if (e instanceof ApiCallError) return `HTTP ${e.status} ${e.code}: ${e.message}`;
  return (e as Error).message;
}

/** Runs fn over items with `API_CONCURRENCY` calls in flight; the first failure wins. */
export async function forEachLimited<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(API_CONCURRENCY, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// VMs and their consoles.

interface VmListEntry { name: string; state: string; exit: { reason: string; detail: string | null } | null }

export async function createVms(api: ApiClient, names: string[], a: FleetArgs): Promise<void> {
  await forEachLimited(names, async (name) => {
    try {
      await api.json('POST', '/v1/vms', { name, guest: GUEST, memMib: a.memMib, cmdline: `period_us=${a.periodUs}`, autostart: true });
    } catch (e) {
      throw new BenchRunError(`swap: POST /v1/vms for ${name} failed: ${describeApiError(e)}`, { cause: e });
    }
  });
}

/** Waits until every VM printed its start line and a heartbeat; returns the guests' tsc_khz (all must agree). */
export async function waitHeartbeating(api: ApiClient, names: string[], periodUs: number, log: (line: string) => void): Promise<number> {
  const t0 = performance.now();
  const khz = new Map<string, number>();
  while (khz.size < names.length) {
    if (performance.now() - t0 > FIRST_HB_TIMEOUT_MS) {
      throw new BenchRunError(`swap: ${names.length - khz.size} VM(s) printed no heartbeat within ${FIRST_HB_TIMEOUT_MS / 1000} s (first: ${names.find((n) => !khz.has(n))})`);
    }
    await forEachLimited(names.filter((n) => !khz.has(n)), async (n) => {
      const text = await api.text(`/v1/vms/${n}/console/log?tailBytes=65536`);
      const start = parseStart(text);
      if (start && /\nhb \d+ /.test(text)) {
        if (start.periodUs !== periodUs) throw new BenchRunError(`swap: VM ${n} says period_us=${start.periodUs}, asked for ${periodUs}`);
        khz.set(n, start.tscKhz);
      }
    });
    if (khz.size < names.length) await sleep(50);
  }
  const all = new Set(khz.values());
  if (all.size !== 1) throw new BenchRunError(`swap: the guests disagree on tsc_khz: ${[...all].join(', ')}`);
  log(`swap: all ${names.length} VMs heartbeating after ${(performance.now() - t0).toFixed(0)} ms, tsc_khz ${[...all][0]}`);
  return [...all][0]!;
}

/** Each VM's last complete heartbeat line. */
export async function lastBeats(api: ApiClient, names: string[]): Promise<Map<string, Beat>> {
  const seqs = await forEachLimited(names, async (n) => {
    const beats = parseBeats(await api.text(`/v1/vms/${n}/console/log?tailBytes=${SEQ_TAIL_BYTES}`), true, `swap: VM ${n}`);
    if (beats.length === 0) throw new BenchRunError(`swap: VM ${n}'s last ${SEQ_TAIL_BYTES} console bytes hold no heartbeat`);
    return beats[beats.length - 1]!;
  });
  return new Map(names.map((n, i) => [n, seqs[i]!]));
}

export async function consoleBeats(api: ApiClient, name: string, tailBytes: number): Promise<{ beats: Beat[]; wholeLog: boolean }> {
  const text = await api.text(`/v1/vms/${name}/console/log?tailBytes=${tailBytes}`);
  const wholeLog = Buffer.byteLength(text) < tailBytes && text.startsWith('heartbeat start');
  return { beats: parseBeats(text, !wholeLog, `swap: VM ${name}`), wholeLog };
}

export async function checkAllRunning(api: ApiClient, names: string[], when: string): Promise<void> {
  const list = (await api.json<{ vms: VmListEntry[] }>('GET', '/v1/vms')).vms;
  const bad = names.map((n) => [n, list.find((v) => v.name === n)] as const).filter(([, v]) => v === undefined || v.state !== 'running');
  if (bad.length > 0 || list.length !== names.length) {
    const sample = bad.slice(0, 5).map(([n, v]) => (v ? `${n} ${v.state}${v.exit ? ` (${v.exit.reason}${v.exit.detail ? `: ${v.exit.detail}` : ''})` : ''}` : `${n} missing`)).join(', ');
    throw new BenchRunError(`swap: ${when}: ${bad.length} of ${names.length} VMs are not running (${sample}); the daemon lists ${list.length}`);
  }
}

