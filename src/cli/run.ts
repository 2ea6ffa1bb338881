// `swapvisor run`: boots one VM in the foreground with its console on stdout. Ctrl-C stops it
// cleanly; the exit code is the guest's exit status.

import { StdoutConsole } from './stdout-console.js';
import { openVmDevices } from '../instance/vm-devices.js';
import { parseDiskOption, parseNetOption } from './device-args.js';
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Machine, type MachineExit } from '../vmm/machine.js';
import { UsageError } from './errors.js';
import { guestKitPath } from '../instance/guest-kit.js';
import { parseSizeMib } from './size.js';
import { RUN_USAGE } from './usage.js';


const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

/** Exit codes besides the guest's own status. */
export const EXIT_FAULT = 125;
export const EXIT_SIGINT = 130;

function readImage(file: string, what: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new UsageError(`${what} ${file} is not a regular file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (size > MAX_IMAGE_BYTES) throw new UsageError(`${what} ${file} is ${size} bytes; the limit is ${MAX_IMAGE_BYTES}`);
  return new Uint8Array(readFileSync(file));
}

function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new UsageError(`CPU list "${text}" is not valid: write it like 0,1 or 0-1`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 1023) throw new UsageError(`CPU range "${part}" is not valid`);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus];
}


export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      guest: { type: 'string' }, kernel: { type: 'string' }, initrd: { type: 'string' },
      mem: { type: 'string' }, vcpus: { type: 'string' }, cmdline: { type: 'string' },
      entry: { type: 'string' }, cpus: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      disk: { type: 'string', multiple: true }, net: { type: 'string', multiple: true }, rng: { type: 'boolean' },
    },
  });
  if (values.help) { process.stdout.write(`${RUN_USAGE}\n`); return 0; }
  if ((values.guest === undefined) === (values.kernel === undefined)) throw new UsageError(`give exactly one of --guest or --kernel\n${RUN_USAGE}`);
  if (values.guest !== undefined && values.initrd !== undefined) throw new UsageError('--initrd only goes with --kernel');
  const entry = values.entry ?? 'auto';
  if (entry !== 'auto' && entry !== 'long-mode' && entry !== 'pvh') throw new UsageError(`--entry must be auto, long-mode or pvh, not "${entry}"`);
  const vcpusText = values.vcpus ?? (values.guest === 'smp' ? '2' : '1');
  if (!/^\d+$/.test(vcpusText)) throw new UsageError(`--vcpus "${vcpusText}" is not a whole number`);
  const kernelFile = values.guest !== undefined ? guestKitPath(values.guest) : values.kernel!;
  const consoleOut = new StdoutConsole();
  const devices = openVmDevices({
    name: values.guest ?? 'vm', memMib: 1, disks: values.disk?.map(parseDiskOption), nets: values.net?.map(parseNetOption), rng: values.rng,
  }, undefined);
  const machine = Machine.create({
    name: values.guest ?? 'vm',
    kernel: readImage(kernelFile, 'kernel'),
    initrd: values.initrd !== undefined ? readImage(values.initrd, 'initrd') : undefined,
    cmdline: values.cmdline ?? (values.guest ? '' : 'console=ttyS0 earlyprintk=serial'),
    memSizeMib: parseSizeMib(values.mem ?? (values.guest ? '64M' : '256M'), '--mem'),
    vcpus: Number(vcpusText),
    entry,
    cpus: values.cpus !== undefined ? parseCpuList(values.cpus) : undefined,
    kvmDevice: process.env['SWAPVISOR_KVM_DEVICE'],
  }, consoleOut, undefined, devices);
  const onSignal = (): void => { void machine.stop(); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stdinListener = (chunk: Buffer): void => machine.enqueueSerialInput(chunk);
  if (process.stdin.isTTY || process.env['SWAPVISOR_STDIN'] === '1') process.stdin.on('data', stdinListener);
  machine.start();
  const exit = await machine.exited;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stdin.off('data', stdinListener);
  process.stdin.pause();
  consoleOut.flush();
  return reportExit(exit);
}

function reportExit(exit: MachineExit): number {
  switch (exit.reason) {
    case 'guest-exit':
      return exit.status;
    case 'reset':
      process.stderr.write('swapvisor: the guest requested a reset; stopped\n');
      return 0;
    case 'stopped':
      process.stderr.write('swapvisor: stopped\n');
      return EXIT_SIGINT;
    case 'fault': {
      const f = exit.fault;
      const rip = f.rip === undefined ? 'unknown' : `0x${f.rip.toString(16)}`;
      process.stderr.write(`swapvisor: error: the guest stopped on vCPU ${f.vcpu} at rip ${rip}: ${f.detail} (${f.kind})\n`);
      return EXIT_FAULT;
    }
  }
}
