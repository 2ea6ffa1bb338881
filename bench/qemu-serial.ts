// The QEMU peer's serial output: each QEMU's console captured with host arrival times, and the two
// heartbeat streams (source, then destination) joined by seq and analysed for the guest-visible gap,
// by host arrival and by the guest's own TSC, over the whole run and around the switch.

import { performance } from 'node:perf_hooks';
import { BenchRunError } from './errors.js';
import { round } from './stats.js';

/** Heartbeats this close to boot are left out of the gap analysis: the guest is still settling. */
const SKIP_AFTER_BOOT_MS = 100;
/** Intervals from the last source heartbeat on that count as "at the switch". */
const SWITCH_INTERVALS = 3;

export interface Line { text: string; t: number }

export class SerialCapture {
  readonly lines: Line[] = [];
  partial = '';
  private waiters: Array<{ test: () => boolean; resolve: () => void }> = [];

  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const t = performance.now();
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      for (const p of parts) this.lines.push({ text: p.replace(/\r$/, ''), t });
      this.waiters = this.waiters.filter((w) => {
        if (!w.test()) return true;
        w.resolve();
        return false;
      });
    });
  }

  /** Resolves when test() holds after some output, or at once if it already holds. */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
}

const START_LINE = /^heartbeat start period_us=(\d+) tsc_khz=(\d+)$/;
const HB_LINE = /^hb (\d+) (\d+) (\d+)$/;

interface Beat { seq: number; tsc: bigint; maxgapUs: number; t: number; side: 'src' | 'dst' }

export function parseStart(lines: readonly Line[]): { periodUs: number; tscKhz: number } | undefined {
  for (const l of lines) {
    const m = START_LINE.exec(l.text);
    if (m) return { periodUs: Number(m[1]), tscKhz: Number(m[2]) };
  }
  return undefined;
}

export function countBeats(lines: readonly Line[]): number {
  let n = 0;
  for (const l of lines) if (l.text.startsWith('hb ')) n++;
  return n;
}

/** Heartbeats in order; a heartbeat line QEMU garbled (its UART dropped bytes) is counted in `garbled`, not used. */
function toBeats(lines: readonly Line[], side: 'src' | 'dst', garbled: string[]): Beat[] {
  const beats: Beat[] = [];
  for (const l of lines) {
    const m = HB_LINE.exec(l.text);
    if (m) beats.push({ seq: Number(m[1]), tsc: BigInt(m[2]!), maxgapUs: Number(m[3]), t: l.t, side });
    else if (l.text.startsWith('hb ')) garbled.push(`${side}: ${l.text.slice(0, 80)}`);
  }
  return beats;
}

export interface Analysis {
  hostGapMs: number; hostSwitchGapMs: number; tscGapMs: number; tscSwitchGapMs: number; guestReportedMaxGapMs: number;
  hostGapEndT: number; tscGapEndSeq: number;
  lastSourceSeq: number; firstDestSeq: number; linesSource: number; linesDest: number; seqLost: number; seqDuplicated: number;
  garbledLines: string[];
}

/**
 * Joins the source's heartbeats and the destination's by seq. A line the source had half printed when it stopped
 * is completed by the destination's first bytes (the UART state migrates), so the two halves are glued first.
 */
export function analyze(src: SerialCapture, dst: SerialCapture, periodUs: number, tscKhz: number): Analysis {
  let hostGapEndT = Number.NaN;
  let tscGapEndSeq = Number.NaN;
  const dstLines = [...dst.lines];
  if (src.partial.length > 0 && dstLines.length > 0) dstLines[0] = { text: src.partial + dstLines[0]!.text, t: dstLines[0]!.t };
  const garbled: string[] = [];
  const s = toBeats(src.lines, 'src', garbled);
  const d = toBeats(dstLines, 'dst', garbled);
  if (s.length === 0 || d.length === 0) throw new BenchRunError(`qemu-migration: heartbeats seen: source ${s.length}, destination ${d.length}; both must print`);
  const beats = [...s, ...d];
  let seqLost = 0;
  let seqDuplicated = 0;
  for (let i = 1; i < beats.length; i++) {
    const step = beats[i]!.seq - beats[i - 1]!.seq;
    if (step > 1) seqLost += step - 1;
    if (step < 1) seqDuplicated++;
  }
  const periodMs = periodUs / 1000;
  const skip = Math.ceil((SKIP_AFTER_BOOT_MS * 1000) / periodUs);
  const tscMs = (a: Beat, b: Beat): number => Number(b.tsc - a.tsc) / tscKhz;
  let hostMax = -Infinity;
  let tscMax = -Infinity;
  for (let i = Math.min(skip, s.length - 1) + 1; i < beats.length; i++) {
    const host = beats[i]!.t - beats[i - 1]!.t;
    const tsc = tscMs(beats[i - 1]!, beats[i]!);
    if (host > hostMax) [hostMax, hostGapEndT] = [host, beats[i]!.t];
    if (tsc > tscMax) [tscMax, tscGapEndSeq] = [tsc, beats[i]!.seq];
  }
  const last = s[s.length - 1]!;
  const first = d[0]!;
  const around: Array<[Beat, Beat]> = [];
  for (let i = s.length; i < Math.min(beats.length, s.length + SWITCH_INTERVALS); i++) around.push([beats[i - 1]!, beats[i]!]);
  return {
    hostGapMs: hostMax - periodMs,
    hostSwitchGapMs: Math.max(...around.map(([x, y]) => y.t - x.t)) - periodMs,
    tscGapMs: tscMax - periodMs,
    tscSwitchGapMs: Math.max(...around.map(([x, y]) => tscMs(x, y))) - periodMs,
    guestReportedMaxGapMs: d[d.length - 1]!.maxgapUs / 1000,
    hostGapEndT,
    tscGapEndSeq,
    lastSourceSeq: last.seq,
    firstDestSeq: first.seq,
    linesSource: s.length,
    linesDest: d.length,
    seqLost,
    seqDuplicated,
    garbledLines: garbled,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One migration.
