// SLOW (about 20-30 s here): Debian's own kernel (linux-image-amd64's vmlinux, booted through its
// PVH entry note) must print its "Linux version" banner on our VMM. Under PVM its CPL0 code is
// emulated, so it gets that far and later stops on an instruction the emulator lacks; on a host
// with hardware virtualization it boots on. scripts/fetch-debian-kernel.sh provides the vmlinux.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI } from './helpers.js';

const vmlinux = process.env['SWAPVISOR_DEBIAN_VMLINUX'];

test('[slow] Debian kernel reaches its Linux version banner through PVH', { skip: !vmlinux && 'set SWAPVISOR_DEBIAN_VMLINUX (npm test does)', timeout: 180_000 }, async () => {
  const child = spawn(process.execPath, [CLI, 'run', '--kernel', vmlinux!, '--mem', '512M', '--cmdline', 'console=ttyS0 earlyprintk=ttyS0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const started = Date.now();
  let bannerMs = -1;
  let interrupted = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (bannerMs < 0 && /Linux version [^\n]*\n/.test(stdout)) bannerMs = Date.now() - started;
    if (bannerMs > 0 && !interrupted && /Command line: [^\n]*\n/.test(stdout)) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  const code = await closed;
  clearTimeout(killer);
  assert.ok(bannerMs > 0, `no banner; stdout tail: ${stdout.slice(-500)} stderr: ${stderr}`);
  assert.match(stdout, /Linux version \d+\.\d+\.\d+-\d+-amd64 \(debian-kernel@lists\.debian\.org\)/);
  assert.match(stdout, /Command line: console=ttyS0 earlyprintk=ttyS0/);
  // Stopped by our Ctrl-C (130) unless the emulator gave up first (125); never a crash of the VMM.
  assert.ok(code === 130 || code === 125, `exit code ${code}, stderr: ${stderr}`);
  process.stderr.write(`# Debian banner after ${bannerMs} ms\n`);
});
