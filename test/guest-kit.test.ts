// Boots every guest-kit guest on /dev/kvm through the real CLI and asserts what the guest printed
// and the status it exited with.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heartbeats, linesStartingWith, runCli } from './helpers.js';

test('heartbeat prints consecutive ticks at its period and exits 0', async () => {
  const r = await runCli(['run', '--guest', 'heartbeat', '--cmdline', 'count=50 period_us=1000']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^heartbeat start period_us=1000 tsc_khz=\d+$/m);
  const hb = heartbeats(r.stdout);
  assert.deepEqual(hb.map((h) => h.seq), Array.from({ length: 50 }, (_, i) => i + 1));
  const tscKhz = Number(/tsc_khz=(\d+)/.exec(r.stdout)![1]);
  const spanMs = Number(hb[49]!.tsc - hb[0]!.tsc) / tscKhz;
  assert.ok(spanMs > 45 && spanMs < 200, `49 periods of 1 ms took ${spanMs} ms by the guest's TSC`);
  assert.match(r.stdout, /^hb done$/m);
});

test('heartbeat boots through its PVH entry too', async () => {
  const r = await runCli(['run', '--guest', 'heartbeat', '--entry', 'pvh', '--cmdline', 'count=3']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(heartbeats(r.stdout).map((h) => h.seq), [1, 2, 3]);
});

test('heartbeat spin mode reports its own largest gap', async () => {
  const r = await runCli(['run', '--guest', 'heartbeat', '--cmdline', 'mode=spin count=5 period_us=2000']);
  assert.equal(r.code, 0, r.stderr);
  const hb = heartbeats(r.stdout);
  assert.equal(hb.length, 5);
  assert.ok(hb.every((h) => h.maxGapUs < 100_000), `gaps: ${hb.map((h) => h.maxGapUs).join(",")}`);
});

test('memcheck fills, verifies and re-dirties its memory', async () => {
  const r = await runCli(['run', '--guest', 'memcheck', '--mem', '64M', '--cmdline', 'mib=16 passes=3']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(linesStartingWith(r.stdout, 'mc pass'), ['mc pass 1 ok', 'mc pass 2 ok', 'mc pass 3 ok']);
  assert.match(r.stdout, /^mc done$/m);
});

test('memcheck refuses more memory than the VM has', async () => {
  const r = await runCli(['run', '--guest', 'memcheck', '--mem', '16M', '--cmdline', 'mib=64 passes=1']);
  assert.equal(r.code, 2, r.stdout);
});

test('timer counts 1 kHz interrupts that match the elapsed time', async () => {
  const r = await runCli(['run', '--guest', 'timer', '--cmdline', 'secs=2']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(linesStartingWith(r.stdout, 'timer ').filter((l) => /^timer \d+ \d+$/.test(l)).map((l) => l.split(' ')[1]), ['1000', '2000']);
  assert.match(r.stdout, /^timer done ok ticks=2000 /m);
});

test('smp starts the second vCPU, shares atomics and delivers IPIs', async () => {
  const r = await runCli(['run', '--guest', 'smp', '--vcpus', '2', '--cmdline', 'iters=200000 ipis=500']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^smp cpus=2 counter=400000 ipis=500$/m);
  assert.match(r.stdout, /^smp done ok$/m);
});

test('a guest exception is reported by the guest kernel with status 0x7f', async () => {
  const r = await runCli(['run', '--guest', 'heartbeat', '--cmdline', 'fault=ud']);
  assert.equal(r.code, 0x7f);
  assert.match(r.stdout, /^EXC 6 rip=0x[0-9a-f]+/m);
});
