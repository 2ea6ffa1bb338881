// Reads heartbeat guest console text ("heartbeat start period_us=P tsc_khz=K", then "hb <seq> <tsc> <maxgap_us>"
// per period) for the benchmarks: parsing, the last seq printed, and the guest-visible gap over a seq window,
// i.e. the largest TSC delta between consecutive heartbeats minus the period, with a seq continuity check.
// It only computes; callers fetch the text and decide what a lost or duplicated seq means for them.

import { BenchRunError } from './errors.js';

export const HB_START_LINE = /^heartbeat start period_us=(\d+) tsc_khz=(\d+)$/;
const HB_LINE = /^hb (\d+) (\d+) (\d+)$/;
/** Heartbeats this close to the guest's first one are left out of a window: the guest is still settling. */
const SKIP_AFTER_BOOT_MS = 100;

export interface Beat { seq: number; tsc: bigint; maxgapUs: number }

/**
 * The complete heartbeat lines of a console tail. The first line is dropped when the tail may have cut it
 * (`truncated`), the last when it has no newline yet. A line that starts "hb " but does not parse is an error:
 * a console that garbles lines (for example across a swap) must not pass as a gap measurement.
 */
export function parseBeats(text: string, truncated: boolean, what: string): Beat[] {
  const lines = text.split('\n');
  lines.pop(); // after the last '\n': empty or a line still being printed
  if (truncated) lines.shift();
  const beats: Beat[] = [];
  for (const l of lines) {
    const m = HB_LINE.exec(l);
    if (m) beats.push({ seq: Number(m[1]), tsc: BigInt(m[2]!), maxgapUs: Number(m[3]) });
    else if (l.startsWith('hb ')) throw new BenchRunError(`${what}: garbled heartbeat line ${JSON.stringify(l.slice(0, 80))}`);
  }
  return beats;
}

/** period_us and tsc_khz from the guest's first line, if the text holds it. */
export function parseStart(text: string): { periodUs: number; tscKhz: number } | undefined {
  for (const l of text.split('\n')) {
    const m = HB_START_LINE.exec(l);
    if (m) return { periodUs: Number(m[1]), tscKhz: Number(m[2]) };
  }
  return undefined;
}

export interface GapWindow {
  /** Largest TSC delta between consecutive heartbeats in [fromSeq, toSeq], in ms, minus the period. */
  gapMs: number;
  /** The seq that ended that largest interval. */
  gapEndSeq: number;
  /** The same, only over intervals that end at or before `quietUntilSeq` (before anything happened). */
  quietGapMs: number;
  /** Consecutive lines whose seq stepped by more than 1 (sum of the missing), or by less than 1 (count). */
  seqLost: number;
  seqDuplicated: number;
  /** Where the lost or duplicated seqs were, for the error message; at most 5. */
  seqProblems: string[];
  firstSeq: number;
  lastSeq: number;
  /**
   * With a mark (the guest TSC at the VM's pause): the interval that spans it, minus the period (it can
   * be negative: the pause fell between two beats and delayed neither), and the largest gap of the
   * window without that interval, with where it ended relative to the mark (ms of guest time).
   */
  atMark?: { gapMs: number; otherGapMs: number; otherGapFromMarkMs: number };
}

/**
 * Analyses the beats whose TSC is in [fromTsc, toTsc] (the window is in guest time, so a guest that prints late
 * still gets a window of the asked length). `wholeLog` says the beats start at the guest's first line: then a
 * window reaching before it is cut at SKIP_AFTER_BOOT_MS after boot; otherwise the tail must reach fromTsc,
 * or the window would silently be shorter than asked.
 */
export function gapWindow(beats: readonly Beat[], fromTsc: bigint, toTsc: bigint, quietUntilSeq: number, periodUs: number, tscKhz: number,
  wholeLog: boolean, what: string, markTsc?: bigint): GapWindow {
  if (beats.length === 0) throw new BenchRunError(`${what}: no heartbeat in the console tail`);
  let from = fromTsc;
  if (wholeLog) {
    const boot = beats[0]!.tsc + BigInt(SKIP_AFTER_BOOT_MS * tscKhz);
    if (from < boot) from = boot;
  } else if (beats[0]!.tsc > from) {
    throw new BenchRunError(`${what}: the console tail starts at seq ${beats[0]!.seq}, after the window's start; fetch a longer tail`);
  }
  const w = beats.filter((b) => b.tsc >= from && b.tsc <= toTsc);
  if (w.length < 2) throw new BenchRunError(`${what}: only ${w.length} heartbeat(s) in the window`);
  const periodMs = periodUs / 1000;
  let gap = -Infinity;
  let gapEndSeq = Number.NaN;
  let quiet = -Infinity;
  let seqLost = 0;
  let seqDuplicated = 0;
  const seqProblems: string[] = [];
  let atMark: number | undefined;
  let other = -Infinity;
  let otherEnd = 0n;
  for (let i = 1; i < w.length; i++) {
    const a = w[i - 1]!;
    const b = w[i]!;
    const step = b.seq - a.seq;
    if (step > 1) {
      seqLost += step - 1;
      if (seqProblems.length < 5) seqProblems.push(`${a.seq} → ${b.seq} (${step - 1} lost)`);
    } else if (step < 1) {
      seqDuplicated++;
      if (seqProblems.length < 5) seqProblems.push(`${a.seq} → ${b.seq} (repeated or out of order)`);
    }
    const ms = Number(b.tsc - a.tsc) / tscKhz;
    if (ms > gap) [gap, gapEndSeq] = [ms, b.seq];
    if (b.seq <= quietUntilSeq && ms > quiet) quiet = ms;
    if (markTsc !== undefined) {
      if (a.tsc <= markTsc && markTsc < b.tsc) atMark = ms;
      else if (ms > other) [other, otherEnd] = [ms, b.tsc];
    }
  }
  return {
    ...(markTsc !== undefined && atMark !== undefined ? {
      atMark: { gapMs: atMark - periodMs, otherGapMs: other - periodMs, otherGapFromMarkMs: Number(otherEnd - markTsc) / tscKhz },
    } : {}),
    gapMs: gap - periodMs,
    gapEndSeq,
    quietGapMs: quiet === -Infinity ? Number.NaN : quiet - periodMs,
    seqLost, seqDuplicated, seqProblems,
    firstSeq: w[0]!.seq,
    lastSeq: w[w.length - 1]!.seq,
  };
}
