// Bad input to `swapvisor run` gets one clear error line, a non-zero exit, no stack trace, and
// leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, runCli } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'swapvisor-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Uint8Array | string): string {
  const p = path.join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/** An ELF64 x86-64 executable with one PT_LOAD at 1 MiB but neither a PVH nor a swapvisor note. */
function elfWithoutEntry(): Uint8Array {
  const b = new Uint8Array(64 + 56 + 16);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  const v = new DataView(b.buffer);
  v.setUint16(16, 2, true); // e_type ET_EXEC
  v.setUint16(18, 62, true); // e_machine EM_X86_64
  v.setUint32(20, 1, true); // e_version
  v.setBigUint64(24, 0x100000n, true); // e_entry
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(52, 64, true); // e_ehsize
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, 1, true); // e_phnum
  const ph = 64;
  v.setUint32(ph, 1, true); // p_type PT_LOAD
  v.setUint32(ph + 4, 5, true); // p_flags R+X
  v.setBigUint64(ph + 8, 120n, true); // p_offset
  v.setBigUint64(ph + 16, 0x100000n, true); // p_vaddr
  v.setBigUint64(ph + 24, 0x100000n, true); // p_paddr
  v.setBigUint64(ph + 32, 16n, true); // p_filesz
  v.setBigUint64(ph + 40, 16n, true); // p_memsz
  v.setBigUint64(ph + 48, 0x1000n, true); // p_align
  return b;
}

async function expectOneLineError(args: string[], pattern: RegExp, env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await runCli(args, { env, timeoutMs: 20_000 });
  assert.notEqual(r.code, 0, `expected failure for ${args.join(' ')}`);
  assert.equal(r.signal, null);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, /^swapvisor: error: /);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error: .*\n.*node:internal/, 'no stack trace');
}

const cases: Array<[string, () => string[], RegExp, NodeJS.ProcessEnv?]> = [
  ['a missing kernel file', () => ['run', '--kernel', path.join(dir, 'nope')], /cannot read kernel .*ENOENT/],
  ['a garbage kernel file', () => ['run', '--kernel', file('garbage', 'this is not a kernel at all')], /not an ELF or bzImage/],
  ['an empty kernel file', () => ['run', '--kernel', file('empty', '')], /kernel image is empty/],
  ['an ELF with no usable entry', () => ['run', '--kernel', file('noentry.elf', elfWithoutEntry())], /no PVH entry note and no swapvisor note/],
  ['an absurd memory size', () => ['run', '--guest', 'heartbeat', '--mem', '900000G'], /memory size .* out of range/],
  ['a zero memory size', () => ['run', '--guest', 'heartbeat', '--mem', '0'], /memory size 0 MiB is out of range/],
  ['an unaligned memory size', () => ['run', '--guest', 'heartbeat', '--mem', '64.5M'], /is not a size/],
  ['a memory size with a bad unit', () => ['run', '--guest', 'heartbeat', '--mem', '64X'], /is not a size/],
  ['too many vCPUs', () => ['run', '--guest', 'heartbeat', '--vcpus', '999'], /vCPU count 999 is out of range/],
  ['zero vCPUs', () => ['run', '--guest', 'heartbeat', '--vcpus', '0'], /vCPU count 0 is out of range/],
  ['an unknown guest', () => ['run', '--guest', 'doom'], /unknown guest "doom"/],
  ['an unknown option', () => ['run', '--guest', 'heartbeat', '--turbo'], /Unknown option '--turbo'/],
  ['both --guest and --kernel', () => ['run', '--guest', 'heartbeat', '--kernel', '/bin/true'], /exactly one of --guest or --kernel/],
  ['an overlong command line', () => ['run', '--guest', 'heartbeat', '--cmdline', 'x'.repeat(10_000)], /command line/i],
  ['/dev/kvm missing', () => ['run', '--guest', 'heartbeat'], /cannot open \/nonexistent\/kvm: ENOENT/, { SWAPVISOR_KVM_DEVICE: '/nonexistent/kvm' }],
  ['a missing disk image', () => ['run', '--guest', 'blkcheck', '--disk', `id=vda,path=${path.join(dir, 'nodisk.img')}`], /nodisk.img does not exist/],
  ['a disk image of part of a sector', () => ['run', '--guest', 'blkcheck', '--disk', `id=vda,path=${file('odd.img', 'x'.repeat(700))}`], /512/],
  ['a --disk without a path', () => ['run', '--guest', 'blkcheck', '--disk', 'id=vda'], /--disk "id=vda" needs path=/],
  ['a tap name the kernel refuses', () => ['run', '--guest', 'netecho', '--net', 'id=eth0,tap=no/slash'], /interface name "no\/slash"/],
  ['a device node that is not KVM', () => ['run', '--guest', 'heartbeat'], /\/proc\/version is not a KVM device/, { SWAPVISOR_KVM_DEVICE: '/proc/version' }],
];

for (const [what, args, pattern, env] of cases) {
  test(`rejects ${what} with one clear line`, () => expectOneLineError(args(), pattern, env));
}

test('rejects /dev/kvm not permitted (an unprivileged user) with one clear line', { skip: process.getuid?.() !== 0 && 'needs root to switch to nobody' }, async () => {
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, CLI, 'run', '--guest', 'heartbeat'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'swapvisor: error: cannot open /dev/kvm: EACCES: run as root or add this user to the kvm group\n');
});

test('an unknown command says so and exits 2', async () => {
  const r = await runCli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test('a triple-faulting guest is reported with its RIP and exits non-zero', async () => {
  const r = await runCli(['run', '--guest', 'heartbeat', '--cmdline', 'fault=triple']);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /^swapvisor: error: the guest stopped on vCPU 0 at rip 0x[0-9a-f]+: the guest triple-faulted/m);
});

test('an emulation failure is reported with its RIP and exits non-zero', { skip: !isPvmHost() && 'only PVM lacks x87 emulation at CPL0' }, async () => {
  const r = await runCli(['run', '--guest', 'heartbeat', '--cmdline', 'fault=emul']);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /at rip 0x[0-9a-f]+: KVM internal error 1: instruction emulation failed \(emulation-failure\)/);
});

test('Ctrl-C stops a running guest cleanly', async () => {
  const r = await runCli(['run', '--guest', 'heartbeat'], { signalAfterMs: 500 });
  assert.equal(r.code, 130);
  assert.ok(r.stdout.includes('hb 1 '), 'the guest ran before the signal');
  assert.match(r.stderr, /^swapvisor: stopped$/m);
});

function isPvmHost(): boolean {
  return existsSync('/sys/module/kvm_pvm');
}
