// Entry point of `npm run bench -- <name> [options]`: dispatches to one benchmark and prints its single
// JSON result on stdout. Progress goes to stderr. It holds no measurement logic of its own.

import { BOOT_USAGE, runBoot } from './boot.js';
import { DENSITY_USAGE, runDensity } from './density.js';
import { BenchUsageError } from './errors.js';
import { IO_USAGE, runIo } from './io.js';
import { QEMU_MIGRATION_USAGE, runQemuMigration } from './qemu-migration.js';
import { runSwapBench, SWAP_USAGE } from './swap.js';

type Bench = (argv: string[], log: (line: string) => void) => Promise<Record<string, unknown>>;

/** Benchmarks by name. */
const BENCHES: ReadonlyMap<string, Bench> = new Map([
  ['boot', runBoot], ['density', runDensity], ['io', runIo], ['qemu-migration', runQemuMigration], ['swap', runSwapBench],
]);

const USAGE = `usage: npm run bench -- <benchmark> [options]

benchmarks:
  boot      spawn → first console byte, swapvisor vs QEMU microvm
  density   N heartbeat VMs in one daemon: create rate, time to all heartbeating, memory per VM, vs QEMU
  io        virtio-blk 4 KiB random read/write IOPS and virtio-net UDP echo packets/s, swapvisor vs QEMU microvm
  qemu-migration  the hot-swap peer: QEMU local live migration (x-ignore-shared) of one heartbeat VM, guest-visible gap
  swap      N heartbeat VMs, R hot swaps in a row: host pause, guest-visible gap, swap time, RAM copied, vs QEMU migration

${BOOT_USAGE}
${DENSITY_USAGE}
${IO_USAGE}
${QEMU_MIGRATION_USAGE}
${SWAP_USAGE}`;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function describe(e: unknown): string {
  if (e instanceof Error && typeof (e as Error & { code?: unknown }).code === 'string') return e.message;
  if (e instanceof Error) return `internal error: ${e.stack ?? e.message}`;
  return `internal error: ${String(e)}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stderr.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  try {
    const bench = BENCHES.get(name);
    if (!bench) throw new BenchUsageError(`unknown benchmark "${name}": choose one of ${[...BENCHES.keys()].join(', ')}`);
    const result = await bench(rest, log);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`bench: error: ${describe(e)}\n`);
    return e instanceof BenchUsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
