// The io benchmark's hot-swap part: one daemon with two VMs, iobench (virtio-blk random writes, a progress line
// every 100 ms with the longest completion gap) and netecho (virtio-net, flooded by udp-flood with a gap figure
// per 100 ms bucket), then hot swaps to the same build while both carry traffic. The gap a swap adds is the
// longest gap in the buckets around the swap minus the median of the other buckets' longest gaps. It stops the
// daemon it started (and kills, by PID, any of its instances still alive) and never touches other daemons.

import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiCallError, ApiClient } from '../src/cli/api-client.js';
import type { SwapReportJson } from '../src/instance/swap-control.js';
import { inRepo, repoRoot } from './args.js';
import { BenchRunError } from './errors.js';
import type { BenchNetns } from './io-netns.js';
import { percentile, round } from './stats.js';

export interface SwapIoOptions { swaps: number; depth: number; window: number; image: string; ns: BenchNetns; tap: string; guestIp: string; hostCidr: string }

export interface SwapIoRun {
  swapTotalMs: number;
  hostPauseUs: Record<string, number>;
  /** Where the swap's phases ended (ms after POST /v1/swap) and roughly where each longest gap ended (bucket resolution). */
  moveVmEndMs: number | null; blkGapBucketEndMs: number; netGapBucketEndMs: number;
  blkGapMs: number; blkBaselineGapMsP50: number; blkBaselineGapMsMax: number; blkExtraGapMs: number;
  netGapMs: number; netBaselineGapMsP50: number; netBaselineGapMsMax: number; netExtraGapMs: number;
}

const BUCKET_MS = 100;
/** Buckets ignored at the start (ARP, warm-up) and taken on either side of the swap as its window. */
const WARMUP_BUCKETS = 5;
const WINDOW_BUCKETS = 2;
const SETTLE_MS = 2_000;
const AFTER_MS = 1_500;
const SWAP_POLL_MS = 50;
const SWAP_TIMEOUT_MS = 60_000;
const FLOOD_SECS = 30;
const TRANSIENT = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ERR_DAEMON_NOT_RUNNING']);

const cli = (...args: string[]): string[] => [inRepo('bin/swapvisor.cjs'), ...args];

function startDaemon(stateDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, cli('daemon', 'start', '--state-dir', stateDir, '--cpus', '0-1', '--mem-budget', '1024M'),
      { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) reject(new BenchRunError(`io: \`swapvisor daemon start\` failed: ${(stderr || stdout || err.message).trim().split('\n').slice(-3).join(' | ')}`));
        else resolve();
      });
  });
}

/** `daemon stop`, then SIGKILL for any process still running with our (unique, temporary) state dir in its argv. */
function stopDaemon(stateDir: string, log: (line: string) => void): void {
  const r = spawnSync(process.execPath, cli('daemon', 'stop', '--state-dir', stateDir), { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) log(`io: \`daemon stop\` failed: ${(r.stderr ?? '').trim().split('\n').pop() ?? r.error?.message}`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(stateDir)) process.kill(Number(entry), 'SIGKILL');
    } catch { /* gone, or not ours to read */ }
  }
  rmSync(stateDir, { recursive: true, force: true });
}

function apiError(what: string, e: unknown): BenchRunError {
  const detail = e instanceof ApiCallError ? `HTTP ${e.status} ${e.code}: ${e.message}` : (e as Error).message;
  return new BenchRunError(`io: ${what} failed: ${detail}`, { cause: e });
}

async function runSwap(api: ApiClient): Promise<SwapReportJson> {
  let first: SwapReportJson;
  try {
    first = await api.json<SwapReportJson>('POST', '/v1/swap', { to: repoRoot });
  } catch (e) {
    throw apiError('POST /v1/swap', e);
  }
  const deadline = Date.now() + SWAP_TIMEOUT_MS;
  for (let transient = 0; Date.now() < deadline;) {
    await sleep(SWAP_POLL_MS);
    try {
      const r = await api.json<SwapReportJson>('GET', '/v1/swap');
      transient = 0;
      if (r.id === first.id && (r.state === 'done' || r.state === 'rolled-back')) return r;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (!(code !== undefined && TRANSIENT.has(code) && ++transient < 200)) throw apiError('GET /v1/swap', e);
    }
  }
  throw new BenchRunError(`io: swap ${first.id} not finished after ${SWAP_TIMEOUT_MS / 1000} s`);
}

/** Longest gaps (µs) of iobench's "io tick <seq> <ops> <maxgap_us>" lines, by seq. */
function blkTicks(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^io tick (\d+) \d+ (\d+)$/gm)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

const lastKey = (m: Map<number, number>): number => Math.max(0, ...m.keys());

/** The longest gap inside [lo, hi] against the median and max of the others from `from` on, in ms. */
function gapFigures(gapsUs: Map<number, number>, from: number, lo: number, hi: number, what: string): { gap: number; p50: number; max: number; atMs: number } {
  const insideEntries = [...gapsUs].filter(([k]) => k >= lo && k <= hi);
  const inside = insideEntries.map(([, v]) => v);
  const outside = [...gapsUs].filter(([k]) => k >= from && (k < lo || k > hi)).map(([, v]) => v);
  if (inside.length === 0 || outside.length === 0) throw new BenchRunError(`io: too few ${what} progress lines around the swap (${inside.length} inside, ${outside.length} outside)`);
  const worst = insideEntries.reduce((a, b) => (b[1] > a[1] ? b : a));
  // The bucket that ended with the longest gap, as ms after the last bucket closed before the swap (±1 bucket).
  return { gap: Math.max(...inside) / 1000, p50: percentile(outside, 50) / 1000, max: Math.max(...outside) / 1000, atMs: (worst[0] - lo) * BUCKET_MS };
}

async function swapOnce(api: ApiClient, o: SwapIoOptions, index: number, log: (line: string) => void): Promise<SwapIoRun> {
  const flood = o.ns.spawn(process.execPath, [inRepo('dist/bench/udp-flood.js'), '--to', `${o.guestIp}:7`, '--secs', String(FLOOD_SECS), '--window', String(o.window), '--bucket-ms', String(BUCKET_MS)]);
  const netGaps = new Map<number, number>();
  let partial = '';
  flood.stdout?.setEncoding('utf8');
  flood.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const b = JSON.parse(line) as { bucket?: number; maxGapUs?: number };
      if (typeof b.bucket === 'number' && typeof b.maxGapUs === 'number') netGaps.set(b.bucket, b.maxGapUs);
    }
  });
  try {
    const blkStart = lastKey(blkTicks(await api.text('/v1/vms/blk/console/log?tailBytes=4096'))) + WARMUP_BUCKETS;
    await sleep(SETTLE_MS);
    if (netGaps.size <= WARMUP_BUCKETS) throw new BenchRunError(`io: swap ${index}: the UDP flood got no echoes from netecho (${netGaps.size} buckets)`);
    const blkBefore = lastKey(blkTicks(await api.text('/v1/vms/blk/console/log?tailBytes=4096')));
    const netBefore = lastKey(netGaps);
    const report = await runSwap(api);
    const blkDone = lastKey(blkTicks(await api.text('/v1/vms/blk/console/log?tailBytes=4096')));
    const netDone = lastKey(netGaps);
    if (report.state !== 'done' || report.error !== null || report.lost.length > 0) {
      throw new BenchRunError(`io: swap ${index} ended "${report.state}"${report.error ? `: ${report.error.code} ${report.error.message}` : ''}${report.lost.length ? `; lost ${report.lost.join(', ')}` : ''}`);
    }
    await sleep(AFTER_MS);
    const blk = gapFigures(blkTicks(await api.text('/v1/vms/blk/console/log?tailBytes=65536')), blkStart, blkBefore, blkDone + WINDOW_BUCKETS, 'iobench');
    const net = gapFigures(netGaps, WARMUP_BUCKETS, netBefore, netDone + WINDOW_BUCKETS, 'udp-flood');
    const run: SwapIoRun = {
      swapTotalMs: round(report.totalMs ?? NaN),
      hostPauseUs: Object.fromEntries(report.vms.map((v) => [v.name, round(v.hostPauseUs, 0)])),
      moveVmEndMs: report.phases.find((p) => p.name === 'move-vm')?.endMs ?? null,
      blkGapBucketEndMs: blk.atMs, netGapBucketEndMs: net.atMs,
      blkGapMs: round(blk.gap), blkBaselineGapMsP50: round(blk.p50), blkBaselineGapMsMax: round(blk.max), blkExtraGapMs: round(blk.gap - blk.p50),
      netGapMs: round(net.gap), netBaselineGapMsP50: round(net.p50), netBaselineGapMsMax: round(net.max), netExtraGapMs: round(net.gap - net.p50),
    };
    log(`io: swap ${index}: ${run.swapTotalMs} ms, host pause ${JSON.stringify(run.hostPauseUs)} µs; blk gap ${run.blkGapMs} ms (baseline p50 ${run.blkBaselineGapMsP50}, max ${run.blkBaselineGapMsMax}); net gap ${run.netGapMs} ms (baseline p50 ${run.netBaselineGapMsP50}, max ${run.netBaselineGapMsMax})`);
    return run;
  } finally {
    if (flood.pid !== undefined && flood.exitCode === null && flood.signalCode === null) flood.kill('SIGKILL');
  }
}

/** Runs `o.swaps` hot swaps, each with its own fresh flood, against one daemon that this function starts and stops. */
export async function measureSwapWithIo(o: SwapIoOptions, log: (line: string) => void): Promise<SwapIoRun[]> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'svbench-io-daemon-'));
  try {
    await startDaemon(stateDir);
    const api = new ApiClient(stateDir);
    try {
      await api.json('POST', '/v1/vms', {
        name: 'blk', kernel: inRepo('guest/build/iobench.elf'), memMib: 64, autostart: true,
        cmdline: `mode=randwrite secs=3600 depth=${o.depth} report_ms=${BUCKET_MS}`, disks: [{ id: 'vda', path: o.image }],
      });
      await api.json('POST', '/v1/vms', { name: 'net', guest: 'netecho', memMib: 64, autostart: true, cmdline: `ip=${o.guestIp}`, nets: [{ id: 'eth0', tap: o.tap, netns: o.ns.name }] });
    } catch (e) {
      throw apiError('POST /v1/vms', e);
    }
    await o.ns.configureTap(o.tap, o.hostCidr);
    const runs: SwapIoRun[] = [];
    for (let i = 1; i <= o.swaps; i++) runs.push(await swapOnce(api, o, i, log));
    return runs;
  } finally {
    stopDaemon(stateDir, log);
  }
}
