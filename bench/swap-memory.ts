// The swap bench's procfs sampling during a swap: host Shmem (guest RAM lives in memfds, so a copy would
// show up there) and the RssAnon of instances A and B, every few milliseconds; and when A exits.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { BenchRunError } from './errors.js';

export const SAMPLE_MS = 5;


/** A /proc/<pid>/status field in MiB, or undefined if the process is gone or a zombie (no such line). */
function statusMib(pid: number, key: string): number | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s);
  return m ? Number(m[1]) / 1024 : undefined;
}

export function shmemMib(): number {
  const m = /^Shmem:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new BenchRunError('swap: /proc/meminfo has no Shmem line');
  return Number(m[1]) / 1024;
}

/**
 * Waits until `pid` maps `wantMib` of shared memory (its VMs' guest RAM, pre-faulted in the background
 * after boot): until then the pre-fault competes with the guests for the CPUs, which is a VM's start,
 * not the swap this bench measures.
 */
export async function waitGuestRamResident(pid: number, wantMib: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const have = statusMib(pid, 'RssShmem');
    if (have === undefined) throw new BenchRunError(`swap: the daemon (pid ${pid}) is gone`);
    if (have >= wantMib) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) {
      throw new BenchRunError(`swap: the daemon maps ${have.toFixed(0)} MiB of guest RAM ${timeoutMs / 1000} s after the VMs started, expected ${wantMib} MiB`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The child of `parent` that is a `daemon receive` for our state dir: instance B while it is A's child. */
function findReceiver(parent: number, stateDir: string): number | undefined {
  let kids: string;
  try {
    kids = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8');
  } catch {
    return undefined;
  }
  for (const k of kids.trim().split(/\s+/).filter(Boolean)) {
    try {
      const argv = readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0');
      if (argv.includes('receive') && argv.includes(stateDir)) return Number(k);
    } catch {
      // Gone already.
    }
  }
  return undefined;
}

/** Samples host Shmem and A's and B's RssAnon every SAMPLE_MS (5 ms) from start() to stop(); notes when A exits. */
export class MemSampler {
  readonly shmemBeforeMib = shmemMib();
  readonly aRssAnonBeforeMib: number;
  readonly aRssShmemBeforeMib: number;
  peakShmemMib = this.shmemBeforeMib;
  peakDaemonsRssAnonMib: number;
  bPid: number | undefined;
  aExitMs: number | undefined;
  samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;

  constructor(private readonly aPid: number, private readonly stateDir: string) {
    const a = statusMib(aPid, 'RssAnon');
    if (a === undefined) throw new BenchRunError(`swap: cannot read /proc/${aPid}/status of instance A before the swap`);
    this.aRssAnonBeforeMib = a;
    this.aRssShmemBeforeMib = statusMib(aPid, 'RssShmem') ?? 0;
    this.peakDaemonsRssAnonMib = a;
  }

  start(t0: number): void {
    this.t0 = t0;
    this.timer = setInterval(() => this.tick(), SAMPLE_MS);
  }

  tick(): void {
    this.samples++;
    this.peakShmemMib = Math.max(this.peakShmemMib, shmemMib());
    const a = statusMib(this.aPid, 'RssAnon');
    if (a === undefined && this.aExitMs === undefined) this.aExitMs = performance.now() - this.t0;
    if (this.bPid === undefined && a !== undefined) this.bPid = findReceiver(this.aPid, this.stateDir);
    const b = this.bPid === undefined ? undefined : statusMib(this.bPid, 'RssAnon');
    this.peakDaemonsRssAnonMib = Math.max(this.peakDaemonsRssAnonMib, (a ?? 0) + (b ?? 0));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
