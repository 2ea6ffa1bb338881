// The io benchmark: virtio-blk 4 KiB random read and write IOPS (guest/iobench.c) and virtio-net UDP echo
// packets per second (guest/netecho.c driven by bench/udp-flood.ts from a network namespace), for swapvisor and
// QEMU microvm in the same run with the same guest ELFs and the same disk image. It prints one JSON object on
// stdout and progress on stderr. Every process, tap, namespace and file it creates it also removes.

import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inRepo, repoRoot, wholeNumber, stringOptions } from './args.js';
import { type ChildSpec, describeEnd, timeChild } from './child.js';
import { BenchRunError, BenchUsageError } from './errors.js';
import { hostInfo } from './host.js';
import { BenchNetns, stopChild } from './io-netns.js';
import { measureSwapWithIo, type SwapIoRun } from './io-swap.js';
import { guestStatusFromQemuExit, locateQemu, microvmArgs, qemuVersion } from './qemu.js';
import { percentile, round } from './stats.js';

export const IO_USAGE =
  'usage: npm run bench -- io [--secs S] [--runs R] [--depth D] [--window W] [--disk-mib M] [--qemu-cache writeback|none] [--swaps N]   (S 1..60 s per measurement, default 3; R 1..20, default 3; D 1..32 requests in flight, default 8; W 1..1024 datagrams in flight, default 32; M 16..4096, default 128; N 0..10 hot swaps of a daemon with block and net traffic in flight, default 2)';

const DEFAULTS = { secs: 3, runs: 3, depth: 8, window: 32, diskMib: 128, swaps: 2 };
const MEM_MIB = 64;
const GUEST_IP = '10.77.0.2';
const HOST_CIDR = '10.77.0.1/24';
const GUEST_MAC = '02:00:00:77:00:02';
/** Where each VMM puts its first virtio-mmio transport (see docs/guest-kit.md); swapvisor appends its own. */
const QEMU_FIRST_VIRTIO = 'virtio_mmio.device=512@0xfeb02e00:47';
/** Boot, set-up and teardown allowance on top of the measured seconds. */
const RUN_SLACK_MS = 30_000;
const STOP_GRACE_MS = 3_000;
const PEERS = ['swapvisor', 'qemu'] as const;
type Peer = (typeof PEERS)[number];
const MODES = ['randread', 'randwrite'] as const;
type BlkMode = (typeof MODES)[number];

export interface IoArgs { secs: number; runs: number; depth: number; window: number; diskMib: number; qemuCache: 'writeback' | 'none'; swaps: number }

export function parseIoArgs(argv: string[]): IoArgs {
  const values = stringOptions(argv, ['secs', 'runs', 'depth', 'window', 'disk-mib', 'qemu-cache', 'swaps'], IO_USAGE);
  const qemuCache = values['qemu-cache'] ?? 'writeback';
  if (qemuCache !== 'writeback' && qemuCache !== 'none') throw new BenchUsageError(`--qemu-cache must be writeback or none, not "${qemuCache}"`);
  return {
    secs: wholeNumber('secs', values['secs'], DEFAULTS.secs, 1, 60),
    runs: wholeNumber('runs', values['runs'], DEFAULTS.runs, 1, 20),
    depth: wholeNumber('depth', values['depth'], DEFAULTS.depth, 1, 32),
    window: wholeNumber('window', values['window'], DEFAULTS.window, 1, 1024),
    diskMib: wholeNumber('disk-mib', values['disk-mib'], DEFAULTS.diskMib, 16, 4096),
    qemuCache,
    swaps: wholeNumber('swaps', values['swaps'], DEFAULTS.swaps, 0, 10),
  };
}

/** What one run of the io bench needs to build a VM's command line. */
interface Setup { args: IoArgs; qemu: string; image: string; ns: BenchNetns; tap: string }

function vmSpec(s: Setup, peer: Peer, guest: string, cmdline: string, dev: 'blk' | 'net'): { command: string; args: string[] } {
  const kernel = inRepo(`guest/build/${guest}.elf`);
  if (peer === 'swapvisor') {
    const devArgs = dev === 'blk' ? ['--disk', s.image] : ['--tap', s.tap, '--mac', GUEST_MAC];
    return { command: process.execPath, args: [inRepo('dist/bench/io-vm.js'), '--kernel', kernel, '--cmdline', cmdline, '--mem-mib', String(MEM_MIB), ...devArgs] };
  }
  const devArgs = dev === 'blk'
    ? ['-device', 'virtio-blk-device,drive=d0', '-drive', `if=none,id=d0,file=${s.image},format=raw,cache=${s.args.qemuCache}`]
    : ['-device', `virtio-net-device,netdev=n0,mac=${GUEST_MAC}`, '-netdev', `tap,id=n0,ifname=${s.tap},script=no,downscript=no`];
  return {
    command: s.qemu,
    args: [...microvmArgs({ kernel, cmdline: `${cmdline} ${QEMU_FIRST_VIRTIO}`, memSizeMib: MEM_MIB, vcpus: 1 }), '-global', 'virtio-mmio.force-legacy=false', ...devArgs],
  };
}

const guestOk = (peer: Peer, code: number | null): boolean => (peer === 'swapvisor' ? code === 0 : guestStatusFromQemuExit(code) === 0);

/** One iobench VM to completion: the guest's own IOPS figure. */
async function measureBlk(s: Setup, peer: Peer, mode: BlkMode, seed: number): Promise<number> {
  const cmdline = `mode=${mode} secs=${s.args.secs} depth=${s.args.depth} seed=${seed}`;
  const spec: ChildSpec = { ...vmSpec(s, peer, 'iobench', cmdline, 'blk'), cwd: repoRoot, timeoutMs: s.args.secs * 1000 + RUN_SLACK_MS };
  const t = await timeChild(spec);
  const m = new RegExp(`^io ${mode} ops (\\d+) us (\\d+) iops (\\d+)$`, 'm').exec(t.stdout);
  if (t.timedOut || !guestOk(peer, t.code) || !m) {
    const tail = `${t.stdout.trim().split('\n').slice(-2).join(' | ')} ${t.stderr.trim().split('\n').slice(-2).join(' | ')}`.trim();
    throw new BenchRunError(`io: ${peer} ${mode} ${describeEnd(t)}${m ? '' : ' without an "io ... iops" line'}; output: ${tail}`);
  }
  return Number(m[3]);
}

/** One netecho VM inside the namespace, flooded for `secs` by udp-flood: echoed packets per second. */
async function measureNet(s: Setup, peer: Peer): Promise<number> {
  const spec = vmSpec(s, peer, 'netecho', `ip=${GUEST_IP}`, 'net');
  const vm: ChildProcess = s.ns.spawn(spec.command, spec.args);
  let vmOut = '';
  vm.stdout?.on('data', (c: Buffer) => { vmOut = (vmOut + c.toString('utf8')).slice(-2048); });
  vm.stderr?.on('data', (c: Buffer) => { vmOut = (vmOut + c.toString('utf8')).slice(-2048); });
  try {
    await s.ns.configureTap(s.tap, HOST_CIDR, vm);
    const r = await s.ns.run(process.execPath, [inRepo('dist/bench/udp-flood.js'), '--to', `${GUEST_IP}:7`, '--secs', String(s.args.secs), '--window', String(s.args.window)], s.args.secs * 1000 + RUN_SLACK_MS);
    const report = (r.stdout.trim() ? JSON.parse(r.stdout.trim().split('\n').pop()!) : {}) as { pps?: number; error?: string };
    if (r.code !== 0 || typeof report.pps !== 'number') {
      throw new BenchRunError(`io: ${peer} net: udp-flood failed (${report.error ?? r.stderr.trim()}); VM output: ${vmOut.trim().split('\n').slice(-3).join(' | ')}`);
    }
    return report.pps;
  } finally {
    await stopChild(vm, STOP_GRACE_MS);
  }
}

/** A disk image of `mib` MiB with non-zero contents, so that reads hit real (page-cached) data, not holes. */
function makeImage(file: string, mib: number): void {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i += 8) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

function checkBuilt(): void {
  const needed: Array<[string, string]> = [
    ['dist/bench/io-vm.js', 'npx tsc -p tsconfig.json'], ['dist/bench/udp-flood.js', 'npx tsc -p tsconfig.json'],
    ['guest/build/iobench.elf', 'make -C guest'], ['guest/build/netecho.elf', 'make -C guest'],
  ];
  for (const [file, fix] of needed) {
    if (!existsSync(inRepo(file))) throw new BenchRunError(`io: ${file} is missing; build it first (${fix})`);
  }
}

type Metric = 'randReadIops' | 'randWriteIops' | 'netEchoPps';
const METRICS: readonly Metric[] = ['randReadIops', 'randWriteIops', 'netEchoPps'];
type Samples = Record<Peer, Record<Metric, number[]>>;

async function measureAll(s: Setup, log: (line: string) => void): Promise<Samples> {
  const samples: Samples = {
    swapvisor: { randReadIops: [], randWriteIops: [], netEchoPps: [] },
    qemu: { randReadIops: [], randWriteIops: [], netEchoPps: [] },
  };
  for (let run = 1; run <= s.args.runs; run++) {
    // Alternate which peer goes first so that drift (page cache, thermal) does not favour one of them.
    const order: readonly Peer[] = run % 2 === 1 ? PEERS : [...PEERS].reverse();
    for (const peer of order) {
      const rr = await measureBlk(s, peer, 'randread', run);
      const rw = await measureBlk(s, peer, 'randwrite', run);
      const pps = await measureNet(s, peer);
      samples[peer].randReadIops.push(rr);
      samples[peer].randWriteIops.push(rw);
      samples[peer].netEchoPps.push(pps);
      log(`io: run ${run}/${s.args.runs} ${peer}: randread ${rr} IOPS, randwrite ${rw} IOPS, net echo ${pps} pps`);
    }
  }
  return samples;
}

/** The hot-swap part: medians over the swaps, or the error that stopped it (the IOPS figures still stand). */
async function hotSwapPart(s: Setup, log: (line: string) => void): Promise<Record<string, unknown> | undefined> {
  if (s.args.swaps === 0) return undefined;
  log(`io: hot swap: ${s.args.swaps} swaps of a daemon running iobench (randwrite) and netecho (flooded)`);
  let runs: SwapIoRun[];
  try {
    runs = await measureSwapWithIo({
      swaps: s.args.swaps, depth: s.args.depth, window: s.args.window, image: s.image, ns: s.ns,
      tap: `svbsw${process.pid % 100000}`, guestIp: GUEST_IP, hostCidr: HOST_CIDR,
    }, log);
  } catch (e) {
    log(`io: hot swap part failed: ${(e as Error).message}`);
    return { error: (e as Error).message };
  }
  const p50 = (f: (r: SwapIoRun) => number): number => round(percentile(runs.map(f), 50));
  return {
    swaps: runs.length,
    blkExtraGapMsP50: p50((r) => r.blkExtraGapMs), netExtraGapMsP50: p50((r) => r.netExtraGapMs),
    swapTotalMsP50: p50((r) => r.swapTotalMs),
    meaning: 'extra gap = longest gap (no block completion / no UDP echo) in the 100 ms buckets spanning the swap minus the median bucket\'s longest gap without a swap',
    runs,
  };
}

function medians(s: Record<Metric, number[]>): Record<Metric, number> {
  return Object.fromEntries(METRICS.map((k) => [k, Math.round(percentile(s[k], 50))])) as Record<Metric, number>;
}

export async function runIo(argv: string[], log: (line: string) => void): Promise<Record<string, unknown>> {
  const args = parseIoArgs(argv);
  checkBuilt();
  const loadAvg1AtStart = round(os.loadavg()[0]!);
  const qemu = locateQemu(log);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'svbench-io-'));
  let ns: BenchNetns | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    ns?.dispose();
    rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const image = path.join(dir, 'disk.img');
    makeImage(image, args.diskMib);
    ns = BenchNetns.create(`svbench-${process.pid}`);
    const setup: Setup = { args, qemu, image, ns, tap: `svbtap${process.pid % 100000}` };
    log(`io: ${args.runs} runs × 2 peers × (randread, randwrite, net) × ${args.secs} s`);
    const samples = await measureAll(setup, log);
    const hotSwap = await hotSwapPart(setup, log);
    const sv = medians(samples.swapvisor);
    const qm = medians(samples.qemu);
    return {
      bench: 'io',
      runs: args.runs,
      secsPerMeasurement: args.secs,
      medians: { swapvisor: sv, qemu: qm },
      ratios: Object.fromEntries(METRICS.map((k) => [k, round(sv[k] / qm[k], 3)])),
      ratioMeaning: 'swapvisor median ÷ QEMU median; above 1 means swapvisor does more per second',
      samples,
      hotSwap: hotSwap ?? 'skipped (--swaps 0)',
      setup: {
        guestMemMib: MEM_MIB, vcpus: 1, blockSize: 4096, depth: args.depth, diskMib: args.diskMib,
        swapvisorDisk: 'BlockFile (buffered, host page cache)', qemuDrive: `format=raw,cache=${args.qemuCache}`,
        net: `netecho, closed-loop UDP echo, ${args.window} datagrams of 64 bytes in flight, from netns through a tap`,
      },
      qemuVersion: qemuVersion(qemu),
      host: hostInfo(),
      loadAvg1: { start: loadAvg1AtStart, end: round(os.loadavg()[0]!) },
      timestamp: new Date().toISOString(),
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ns?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
