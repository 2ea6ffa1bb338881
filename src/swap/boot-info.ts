// Phase 1 of a swap, boot-info: keep the platform information and prepare the launch package.
// Instance A loads the platform record it was given, decides B's partition (which CPUs, how much
// budget), restricts the record to that partition, and checks that the build B runs from exists,
// is runnable, and accepts A's handover protocol and state format. Nothing changes on the host yet.

import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { CURRENT_FORMAT_VERSION, MIN_READABLE_FORMAT_VERSION, newestCommonFormat } from '../state/envelope.js';
import type { SwapHost } from './host.js';
import { PROTOCOL_VERSION, PROTOCOL_WINDOW } from './protocol.js';
import { SwapError } from './swap-error.js';

export interface BuildInfo {
  version: string;
  protocol: [number, number];
  stateFormat: [number, number];
}

export interface LaunchPackage {
  targetDir: string;
  cli: string;
  target: BuildInfo;
  /** CPUs A keeps while both run, and the CPUs B starts on. */
  aCpus: number[];
  bCpus: number[];
  /** B's memory budget: the whole partition's, since the VMs' RAM is the same memory. */
  budgetMib: number;
  /** The platform record restricted to B's partition, encoded for the HELLO message. */
  platformSlice: Uint8Array;
}

/** Splits the partition: B gets the upper half of the CPUs (at least one), A keeps the rest. */
export function splitCpus(cpus: readonly number[]): { aCpus: number[]; bCpus: number[] } {
  const sorted = [...cpus].sort((a, b) => a - b);
  if (sorted.length < 2) return { aCpus: sorted, bCpus: sorted };
  const half = Math.floor(sorted.length / 2);
  return { aCpus: sorted.slice(0, sorted.length - half), bCpus: sorted.slice(sorted.length - half) };
}

/**
 * Asks the build at `cli` what it is (`swapvisor version --json`). The child is a whole Node start-up
 * (~50-90 ms of CPU): `place` moves it onto the CPUs B will get, so that it takes little CPU time
 * from the VMs that run on the others.
 */
export function readBuildInfo(cli: string, timeoutMs = 15_000, place?: (pid: number) => Promise<void>): Promise<BuildInfo> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [cli, 'version', '--json'], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        reject(new SwapError('ERR_SWAP_TARGET', `the build at ${cli} does not run (${stderr.trim().split('\n')[0] ?? err.message}); run \`npm run setup\` in it`));
        return;
      }
      try {
        const info = JSON.parse(stdout) as Partial<BuildInfo>;
        if (typeof info.version !== 'string' || !Array.isArray(info.protocol) || !Array.isArray(info.stateFormat)) throw new Error('fields missing');
        resolve(info as BuildInfo);
      } catch (e) {
        reject(new SwapError('ERR_SWAP_TARGET', `the build at ${cli} printed no version information (${(e as Error).message}); is it a swapvisor build?`));
      }
    });
    // Best effort: a child that ends first cannot be moved, and its output still counts.
    if (place && child.pid !== undefined) place(child.pid).catch(() => undefined);
  });
}

/**
 * This instance's own build, when the target is the directory it runs from and nothing there was
 * rebuilt since it started: then there is no need to start a process to ask.
 */
function unchangedOwnBuild(host: SwapHost, targetDir: string): BuildInfo | undefined {
  if (path.resolve(host.packageRoot) !== targetDir) return undefined;
  try {
    const built = Math.max(...['dist/swapvisor.cjs', 'package.json'].map((f) => statSync(path.join(targetDir, f)).mtimeMs));
    if (built >= host.startedAtMs) return undefined;
  } catch {
    return undefined;
  }
  return { version: host.version, protocol: [...PROTOCOL_WINDOW], stateFormat: [MIN_READABLE_FORMAT_VERSION, CURRENT_FORMAT_VERSION] };
}

const within = (v: number, [lo, hi]: readonly [number, number]): boolean => v >= lo && v <= hi;

export async function prepareBootInfo(host: SwapHost, targetDirInput: string): Promise<LaunchPackage> {
  const opts = { targetDir: targetDirInput, cpus: host.partition.cpus, budgetMib: host.budgetMib };
  const targetDir = path.resolve(opts.targetDir);
  const cli = path.join(targetDir, 'bin', 'swapvisor.cjs');
  if (!existsSync(cli) || !existsSync(path.join(targetDir, 'dist', 'swapvisor.cjs'))) {
    throw new SwapError('ERR_SWAP_TARGET', `${targetDir} is not a built swapvisor (no bin/swapvisor.cjs or dist/swapvisor.cjs); run \`npm run setup\` there first`);
  }
  const { aCpus, bCpus } = splitCpus(opts.cpus);
  const target = unchangedOwnBuild(host, targetDir) ?? await readBuildInfo(cli, undefined, (pid) => host.partition.placeOutside(pid, bCpus));
  if (!within(PROTOCOL_VERSION, target.protocol)) {
    throw new SwapError('ERR_SWAP_VERSION', `the build at ${targetDir} (version ${target.version}) speaks handover protocol ${target.protocol.join('-')}, this instance speaks ${PROTOCOL_VERSION}: swap through an adjacent version`);
  }
  if (newestCommonFormat(target.stateFormat) === undefined) {
    throw new SwapError('ERR_SWAP_VERSION', `the build at ${targetDir} (version ${target.version}) reads state formats ${target.stateFormat.join('-')}, this instance writes ${MIN_READABLE_FORMAT_VERSION}-${CURRENT_FORMAT_VERSION}: swap through an adjacent version`);
  }
  const platformSlice = host.platformSliceFor(bCpus, opts.budgetMib);
  return { targetDir, cli, target, aCpus, bCpus, budgetMib: opts.budgetMib, platformSlice };
}
