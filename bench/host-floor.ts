// The host's own floor for the guest-visible gap: how late a plain thread that sleeps one period at a
// time wakes up on this machine, with nothing of swapvisor running. Measured with cyclictest (Debian's
// rt-tests) in the same bench run: one SCHED_OTHER nice-0 thread per CPU, at the heartbeat's period,
// with the CPUs free to idle as they are when our VMs run (--laptop leaves /dev/cpu_dma_latency alone).
//
// A heartbeat's gap is the largest lateness in a window, so the floor is reported the same way: the
// largest wake-up lateness of each thread in each window of FLOOR_WINDOW_MS, as a distribution.

import { spawn } from 'node:child_process';
import { locateOrInstall } from './apt.js';
import { BenchRunError } from './errors.js';
import { atNormalPriority } from './priority.js';
import { percentile, round } from './stats.js';

const CYCLICTEST = 'cyclictest';
const RT_TESTS_PACKAGE = 'rt-tests';
/** Shorter than a swap's gap window (2 s around the swap plus the swap), so the floor errs low. */
export const FLOOR_WINDOW_MS = 2_000;

export interface HostFloor {
  tool: string;
  seconds: number;
  periodUs: number;
  threads: number;
  /** Every wake-up's lateness. */
  wakeLatencyUs: { p50: number; p99: number; max: number };
  /** The largest lateness per thread per FLOOR_WINDOW_MS window: comparable with a guest's gap. */
  worstPerWindowMs: { p50: number; p99: number; max: number; windows: number };
  /** Wake-ups more than 1 ms late, per thread-second. */
  over1msPerSecond: number;
}

/** One `cyclictest -v` sample line: "  thread:  loop:  latency-µs". */
const SAMPLE = /^\s*(\d+):\s*(\d+):\s*(\d+)\s*$/;

/** Splits `cyclictest -v` output into per-thread latency series (µs, in loop order). */
export function parseCyclictestVerbose(text: string): Map<number, number[]> {
  const series = new Map<number, number[]>();
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const thread = Number(m[1]);
    const s = series.get(thread) ?? [];
    s[Number(m[2])] = Number(m[3]);
    series.set(thread, s);
  }
  return series;
}

const maxOf = (xs: readonly number[]): number => xs.reduce((m, x) => (x > m ? x : m), -Infinity);

/** Summarizes per-thread series sampled every `periodUs` into a HostFloor (without tool and seconds). */
export function summarizeFloor(series: Map<number, number[]>, periodUs: number): Omit<HostFloor, 'tool' | 'seconds'> {
  const all: number[] = [];
  const worst: number[] = [];
  const perWindow = Math.max(1, Math.round((FLOOR_WINDOW_MS * 1000) / periodUs));
  for (const s of series.values()) {
    const samples = s.filter((x) => Number.isFinite(x));
    all.push(...samples);
    for (let i = 0; i + perWindow <= samples.length; i += perWindow) worst.push(maxOf(samples.slice(i, i + perWindow)) / 1000);
  }
  if (all.length === 0 || worst.length === 0) throw new BenchRunError('swap: cyclictest printed no samples for a whole window');
  const threadSeconds = (all.length * periodUs) / 1e6;
  return {
    periodUs,
    threads: series.size,
    wakeLatencyUs: { p50: round(percentile(all, 50), 0), p99: round(percentile(all, 99), 0), max: maxOf(all) },
    worstPerWindowMs: { p50: round(percentile(worst, 50), 3), p99: round(percentile(worst, 99), 3), max: round(maxOf(worst), 3), windows: worst.length },
    over1msPerSecond: round(all.filter((x) => x > 1000).length / threadSeconds, 3),
  };
}

/** Runs cyclictest for `seconds` on every CPU at `periodUs` and summarizes it. */
export async function measureHostFloor(periodUs: number, seconds: number, log: (line: string) => void): Promise<HostFloor> {
  const binary = locateOrInstall(CYCLICTEST, RT_TESTS_PACKAGE, log);
  const loops = Math.round((seconds * 1e6) / periodUs);
  const args = ['--threads', '--affinity', '--distance=0', `--interval=${periodUs}`, `--loops=${loops}`, '--priority=0', '--policy=other', '--laptop', '--verbose'];
  log(`swap: host floor: ${CYCLICTEST} ${args.join(' ')}`);
  const [cmd, cmdArgs] = atNormalPriority(binary, args);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-2048); });
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: Buffer.concat(out).toString(), stderr: err }));
  });
  if (code !== 0) throw new BenchRunError(`swap: ${CYCLICTEST} exited with ${code}: ${stderr.trim() || stdout.slice(-500)}`);
  return {
    tool: `${CYCLICTEST} (${RT_TESTS_PACKAGE}): one SCHED_OTHER nice-0 thread per CPU, CPUs free to idle`,
    seconds,
    ...summarizeFloor(parseCyclictestVerbose(stdout), periodUs),
  };
}
