// The boot benchmark: time from process spawn to the first console byte (and to exit) for the heartbeat
// guest under swapvisor and under QEMU microvm, alternating run by run. It prints one JSON object on
// stdout and progress on stderr. It measures; it does not tune swapvisor or QEMU.

import { existsSync } from 'node:fs';
import { type ChildTiming, describeEnd, timeChild } from './child.js';
import { BenchRunError, BenchUsageError } from './errors.js';
import { hostInfo } from './host.js';
import { guestStatusFromQemuExit, locateQemu, microvmArgs, qemuVersion } from './qemu.js';
import { round, summarize } from './stats.js';
import { inRepo, repoRoot, stringOptions } from './args.js';

export const BOOT_USAGE = 'usage: npm run bench -- boot [--runs N]   (N ≥ 1, default 10)';
const DEFAULT_RUNS = 10;
const MAX_RUNS = 1000;
const RUN_TIMEOUT_MS = 30_000;
const GUEST = 'heartbeat';
const GUEST_CMDLINE = 'count=1';
const GUEST_FIRST_LINE = 'heartbeat start';
const GUEST_DONE_LINE = 'hb done';

/** This file runs as dist/bench/boot.js, two levels below the repository root. */

export function parseBootArgs(argv: string[]): { runs: number } {
  const values = stringOptions(argv, ['runs'], BOOT_USAGE);
  const text = values.runs ?? String(DEFAULT_RUNS);
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_RUNS) {
    throw new BenchUsageError(`--runs must be a whole number from 1 to ${MAX_RUNS}, not "${text}"`);
  }
  return { runs: Number(text) };
}

type Peer = 'swapvisor' | 'qemu';

/** Fails the whole bench unless the guest printed its banner first, finished, and exited with status 0. */
function checkRun(peer: Peer, run: number, t: ChildTiming): number {
  const okExit = peer === 'swapvisor' ? t.code === 0 : guestStatusFromQemuExit(t.code) === 0;
  const problem =
    t.timedOut || !okExit ? `${describeEnd(t)} (expected ${peer === 'swapvisor' ? '0' : '1, guest status 0'})`
      : t.firstByteMs === undefined ? 'printed nothing on stdout'
      : !t.stdout.startsWith(GUEST_FIRST_LINE) ? `printed "${t.stdout.slice(0, 60)}" before the guest banner`
      : !t.stdout.includes(GUEST_DONE_LINE) ? `never printed "${GUEST_DONE_LINE}"`
      : undefined;
  if (problem !== undefined || t.firstByteMs === undefined) {
    const tail = t.stderr.trim().split('\n').slice(-3).join(' | ');
    throw new BenchRunError(`boot: ${peer} run ${run} ${problem}${tail ? `; stderr: ${tail}` : ''}`);
  }
  return t.firstByteMs;
}

interface Samples { firstByteMs: number[]; exitMs: number[] }

function summaryFields(prefix: Peer, s: Samples): Record<string, number> {
  const fb = summarize(s.firstByteMs);
  return {
    [`${prefix}FirstByteMsP50`]: round(fb.p50), [`${prefix}FirstByteMsP90`]: round(fb.p90),
    [`${prefix}FirstByteMsMin`]: round(fb.min), [`${prefix}FirstByteMsMax`]: round(fb.max),
    [`${prefix}ExitMsP50`]: round(summarize(s.exitMs).p50),
  };
}

function checkBuilt(): void {
  const needed: Array<[string, string]> = [
    ['dist/src/cli/main.js', 'cd /work/main && npx tsc -p tsconfig.json'],
    [`guest/build/${GUEST}.elf`, 'make -C guest'],
  ];
  for (const [file, fix] of needed) {
    if (!existsSync(inRepo(file))) throw new BenchRunError(`boot: ${file} is missing; build it first (${fix})`);
  }
}

export async function runBoot(argv: string[], log: (line: string) => void): Promise<Record<string, unknown>> {
  const { runs } = parseBootArgs(argv);
  checkBuilt();
  const qemu = locateQemu(log);
  const node = process.execPath;
  const kernel = inRepo(`guest/build/${GUEST}.elf`);
  const swapvisorSpec = { command: node, args: [inRepo('bin/swapvisor.cjs'), 'run', '--guest', GUEST, '--cmdline', GUEST_CMDLINE], cwd: repoRoot, timeoutMs: RUN_TIMEOUT_MS };
  const qemuSpec = { command: qemu, args: microvmArgs({ kernel, cmdline: GUEST_CMDLINE, memSizeMib: 64, vcpus: 1 }), cwd: repoRoot, timeoutMs: RUN_TIMEOUT_MS };
  const nodeSpec = { command: node, args: ['-e', '0'], timeoutMs: RUN_TIMEOUT_MS };

  log('boot: warm-up run of each (not counted)');
  checkRun('swapvisor', 0, await timeChild(swapvisorSpec));
  checkRun('qemu', 0, await timeChild(qemuSpec));
  const sv: Samples = { firstByteMs: [], exitMs: [] };
  const qm: Samples = { firstByteMs: [], exitMs: [] };
  const nodeExitMs: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const a = await timeChild(swapvisorSpec);
    sv.firstByteMs.push(checkRun('swapvisor', run, a));
    sv.exitMs.push(a.exitMs);
    const b = await timeChild(qemuSpec);
    qm.firstByteMs.push(checkRun('qemu', run, b));
    qm.exitMs.push(b.exitMs);
    const n = await timeChild(nodeSpec);
    if (n.code !== 0) throw new BenchRunError(`boot: \`node -e 0\` ${describeEnd(n)}`);
    nodeExitMs.push(n.exitMs);
    log(`boot: run ${run}/${runs}: swapvisor ${a.firstByteMs?.toFixed(1)} ms, qemu ${b.firstByteMs?.toFixed(1)} ms to first byte; node -e 0 ${n.exitMs.toFixed(1)} ms`);
  }
  const svP50 = summarize(sv.firstByteMs).p50;
  const qmP50 = summarize(qm.firstByteMs).p50;
  return {
    bench: 'boot',
    runs,
    ...summaryFields('swapvisor', sv),
    ...summaryFields('qemu', qm),
    ratio: round(svP50 / qmP50, 3),
    nodeStartupMsP50: round(summarize(nodeExitMs).p50),
    guest: { name: GUEST, cmdline: GUEST_CMDLINE, memSizeMib: 64, vcpus: 1 },
    qemuVersion: qemuVersion(qemu),
    host: hostInfo(),
    timestamp: new Date().toISOString(),
  };
}
