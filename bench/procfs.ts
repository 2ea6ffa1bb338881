// Reads a process's memory and CPU counters from procfs for the benchmarks: the Rss* and Threads lines of
// /proc/<pid>/status, utime+stime from /proc/<pid>/stat, and Pss from /proc/<pid>/smaps_rollup.
// It only reads; a process that has gone away is reported as a BenchRunError naming the pid.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BenchRunError } from './errors.js';

export interface ProcMemory {
  vmRssMib: number;
  rssAnonMib: number;
  rssFileMib: number;
  rssShmemMib: number;
}

export interface ProcStatus extends ProcMemory {
  threads: number;
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (e) {
    throw new BenchRunError(`cannot read /proc/${pid}/${file} (did the process exit?): ${(e as Error).message}`, { cause: e });
  }
}

/** The value of a "Key:  1234 kB" (or "Key: 12") line, or a BenchRunError if the kernel did not print it. */
function field(text: string, key: string, pid: number, file: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
  if (!m) throw new BenchRunError(`/proc/${pid}/${file} has no ${key} line`);
  return Number(m[1]);
}

const kbToMib = (kb: number): number => kb / 1024;

export function procStatus(pid: number): ProcStatus {
  const s = readProc(pid, 'status');
  const f = (key: string): number => field(s, key, pid, 'status');
  return {
    vmRssMib: kbToMib(f('VmRSS')),
    rssAnonMib: kbToMib(f('RssAnon')),
    rssFileMib: kbToMib(f('RssFile')),
    rssShmemMib: kbToMib(f('RssShmem')),
    threads: f('Threads'),
  };
}

/** Proportional set size split as the kernel reports it in smaps_rollup, in MiB. */
export function procPss(pid: number): { pssMib: number; pssAnonMib: number; pssFileMib: number; pssShmemMib: number } {
  const s = readProc(pid, 'smaps_rollup');
  const f = (key: string): number => kbToMib(field(s, key, pid, 'smaps_rollup'));
  return { pssMib: f('Pss'), pssAnonMib: f('Pss_Anon'), pssFileMib: f('Pss_File'), pssShmemMib: f('Pss_Shmem') };
}

let clockTicks: number | undefined;

/** sysconf(_SC_CLK_TCK), through getconf since Node does not expose it; 100 on every Linux we run on. */
function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of the whole process (all threads), in seconds. */
export function procCpuSeconds(pid: number): number {
  const s = readProc(pid, 'stat');
  // The command name (field 2) is in parentheses and may hold spaces; count fields after the last ')'.
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3]: utime is 14, stime is 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new BenchRunError(`/proc/${pid}/stat is not in the expected format`);
  return (utime + stime) / clkTck();
}
