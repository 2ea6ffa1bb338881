// The swapvisor side of the io benchmark, as its own process: boots one guest-kit ELF in a Machine with an
// optional virtio-blk disk and virtio-net tap, copies the console to stdout and exits with the guest's status.
// It is a measuring harness, not a CLI: the io bench spawns it (inside its network namespace when a tap is used).
//
//   node dist/bench/io-vm.js --kernel ELF --cmdline "..." [--mem-mib 64] [--disk IMG] [--tap NAME] [--mac 02:..]

import { StdoutConsole } from '../src/cli/stdout-console.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BlockFile } from '../src/sys/block-file.js';
import { Tap } from '../src/sys/tap.js';
import { Machine } from '../src/vmm/machine.js';
import type { VirtioAttachment } from '../src/vmm/virtio-host.js';

/** Exit codes for endings other than the guest's own exit (whose status is passed through). */
const EXIT_FAULT = 125;
const EXIT_STOPPED = 124;


async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true, allowPositionals: false,
    options: {
      kernel: { type: 'string' }, cmdline: { type: 'string' }, 'mem-mib': { type: 'string' },
      disk: { type: 'string' }, tap: { type: 'string' }, mac: { type: 'string' },
    },
  });
  if (values.kernel === undefined) throw new Error('--kernel is required');
  const devices: VirtioAttachment[] = [];
  if (values.disk !== undefined) {
    devices.push({ kind: 'block', id: 'vda', file: BlockFile.open(values.disk, { readOnly: false }), serial: 'svbench' });
  }
  if (values.tap !== undefined) {
    devices.push({ kind: 'net', id: 'eth0', tap: Tap.open(values.tap), mac: values.mac ?? '02:00:00:77:00:02' });
  }
  const out = new StdoutConsole();
  const machine = Machine.create({
    name: 'iobench', kernel: readFileSync(values.kernel), cmdline: values.cmdline ?? '',
    memSizeMib: Number(values['mem-mib'] ?? '64'), vcpus: 1,
  }, out, undefined, devices);
  const onSignal = (): void => { void machine.stop(); };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  machine.start();
  const exit = await machine.exited;
  out.flush();
  if (exit.reason === 'guest-exit') return exit.status;
  if (exit.reason === 'fault') {
    process.stderr.write(`io-vm: the guest stopped: ${exit.fault.detail} (${exit.fault.kind})\n`);
    return EXIT_FAULT;
  }
  process.stderr.write(`io-vm: ${exit.reason}\n`);
  return EXIT_STOPPED;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`io-vm: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
