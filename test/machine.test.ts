// The Machine lifecycle on /dev/kvm: pause with every vCPU quiescent, resume with no tick lost,
// stop from outside, and no file descriptor left behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ByteSink } from '../src/devices/device.js';
import { Machine } from '../src/vmm/machine.js';
import { Memfd } from '../src/sys/memfd.js';
import { VCPU_THREAD_NICE, VCPU_THREAD_SLICE_NS } from '../src/vmm/vcpu.js';
import { requestedSliceNs } from '../src/sys/affinity.js';
import { getPriority } from 'node:os';
import { ROOT, heartbeats, openFdCount } from './helpers.js';

const HEARTBEAT = readFileSync(path.join(ROOT, 'guest', 'build', 'heartbeat.elf'));
const SMP = readFileSync(path.join(ROOT, 'guest', 'build', 'smp.elf'));

class TextSink implements ByteSink {
  text = '';
  write(bytes: Uint8Array): void { this.text += Buffer.from(bytes).toString('latin1'); }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('pause stops the guest, resume continues it with no tick lost or repeated', async () => {
  const fdsBefore = openFdCount();
  const out = new TextSink();
  const m = Machine.create({ name: 'pause-test', kernel: HEARTBEAT, cmdline: 'period_us=1000', memSizeMib: 32, vcpus: 1 }, out);
  try {
    m.start();
    await waitFor(() => heartbeats(out.text).length >= 20, 5000, '20 heartbeats');
    await m.pause();
    assert.equal(m.state, 'paused');
    assert.ok(m.vcpus.every((v) => v.state === 'paused'));
    const atPause = heartbeats(out.text).length;
    await sleep(100);
    assert.equal(heartbeats(out.text).length, atPause, 'no output while paused');
    m.resume();
    await waitFor(() => heartbeats(out.text).length >= atPause + 20, 5000, '20 more heartbeats');
    const hb = heartbeats(out.text);
    assert.deepEqual(hb.map((h) => h.seq), hb.map((_, i) => i + 1), 'sequence numbers are contiguous');
    // The guest's own clock saw the pause as one long gap between ticks.
    assert.ok(hb[hb.length - 1]!.maxGapUs >= 90_000, `guest-measured max gap ${hb[hb.length - 1]!.maxGapUs} us`);
  } finally {
    await m.stop();
  }
  assert.equal(m.state, 'stopped');
  assert.equal(openFdCount(), fdsBefore, 'every fd (kvm, vm, vcpu, memfd, eventfd) is closed');
});

test('pause and resume many times in a row with two vCPUs busy', async () => {
  const out = new TextSink();
  const m = Machine.create({ name: 'smp-pause', kernel: SMP, cmdline: 'iters=3000000 ipis=2000', memSizeMib: 32, vcpus: 2 }, out);
  m.start();
  await waitFor(() => out.text.includes('smp ap up'), 5000, 'the AP to start');
  for (let i = 0; i < 20 && m.state === 'running'; i++) {
    await m.pause();
    m.resume();
    await sleep(2);
  }
  const exit = await m.exited;
  assert.deepEqual(exit, { reason: 'guest-exit', status: 0 }, out.text);
  assert.match(out.text, /^smp cpus=2 counter=6000000 ipis=2000$/m);
});

test('the main thread stays responsive while two vCPUs run flat out', async () => {
  const out = new TextSink();
  const m = Machine.create({ name: 'lag-test', kernel: SMP, cmdline: 'iters=20000000 ipis=5000', memSizeMib: 32, vcpus: 2 }, out);
  let worstLagMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worstLagMs = Math.max(worstLagMs, now - last - 10);
    last = now;
  }, 10);
  m.start();
  await sleep(1000);
  clearInterval(timer);
  await m.stop();
  assert.ok(out.text.includes('smp ap up'), 'both vCPUs were running');
  assert.ok(worstLagMs < 50, `event loop lag up to ${worstLagMs.toFixed(1)} ms`);
});

test('stop ends a running guest and releases it', async () => {
  const fdsBefore = openFdCount();
  const out = new TextSink();
  const m = Machine.create({ name: 'stop-test', kernel: HEARTBEAT, cmdline: '', memSizeMib: 16, vcpus: 1 }, out);
  m.start();
  await waitFor(() => heartbeats(out.text).length >= 3, 5000, 'heartbeats');
  assert.deepEqual(await m.stop(), { reason: 'stopped' });
  assert.equal(openFdCount(), fdsBefore);
  assert.throws(() => m.resume(), /cannot resume a machine that is stopped/);
});

test('a guest exit status comes back through `exited`', async () => {
  const out = new TextSink();
  const m = Machine.create({ name: 'exit-test', kernel: HEARTBEAT, cmdline: 'count=2', memSizeMib: 16, vcpus: 1 }, out);
  m.start();
  assert.deepEqual(await m.exited, { reason: 'guest-exit', status: 0 });
  assert.match(out.text, /^hb done$/m);
});

test('the vCPU thread answers the guest\'s LSR polls itself, and the output is unchanged', async () => {
  const sink = new TextSink();
  const m = Machine.create({ name: 'fast-lsr', kernel: HEARTBEAT, cmdline: 'period_us=1000 count=50', memSizeMib: 16, vcpus: 1 }, sink);
  m.start();
  const exit = await m.exited;
  assert.deepEqual(exit, { reason: 'guest-exit', status: 0 });
  const beats = heartbeats(sink.text);
  assert.deepEqual(beats.map((b) => b.seq), Array.from({ length: 50 }, (_, i) => i + 1), 'every line, in order');
  const v = m.vcpus[0]!;
  assert.ok(v.exitsTotal - v.counters.exits >= 50, `one LSR poll per line answered in the vCPU thread (${v.exitsTotal - v.counters.exits})`);
});

test('a guest that prints goes on while the main thread is blocked: the vCPU thread queues its console', async () => {
  const sink = new TextSink();
  const m = Machine.create({ name: 'console-queue', kernel: HEARTBEAT, cmdline: 'period_us=1000 count=600', memSizeMib: 16, vcpus: 1 }, sink);
  m.start();
  await waitFor(() => heartbeats(sink.text).length >= 20, 10_000, 'the first heartbeats');
  // 300 ms without this thread: KVM's ring (170 bytes) holds ~6 lines; the rest must queue natively.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  assert.deepEqual(await m.exited, { reason: 'guest-exit', status: 0 });
  const beats = heartbeats(sink.text);
  assert.deepEqual(beats.map((b) => b.seq), Array.from({ length: 600 }, (_, i) => i + 1), 'every line once, in order');
  assert.match(sink.text, /hb done\n$/, 'down to the last byte the guest wrote');
  // The guest's own measure: the largest delay between two of its timer wake-ups, past the period.
  // Waiting for this thread would show up as ~300 ms here.
  const worst = Math.max(...beats.map((b) => b.maxGapUs));
  assert.ok(worst < 100_000, `the guest stalled for ${worst} µs while the main thread was blocked`);
  const v = m.vcpus[0]!;
  assert.ok(v.exitsTotal - v.counters.exits >= 600, 'the polls and the overflowing writes were answered in the vCPU thread');
});

test('pausing a guest that exits meanwhile is safe: its console queue is closed before its memory goes', async () => {
  for (let round = 0; round < 20; round++) {
    const m = Machine.create({ name: `pause-race-${round}`, kernel: HEARTBEAT, cmdline: 'count=2 period_us=200', memSizeMib: 4, vcpus: 1 }, new TextSink());
    m.start();
    let exited = false;
    void m.exited.then(() => { exited = true; });
    while (!exited) {
      if (m.state === 'running') {
        await m.pause().catch(() => undefined);
        if ((m.state as string) === 'paused') m.resume();
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(m.state, 'stopped');
  }
});

test('vCPU threads ask for short time slices at the main thread\'s priority', async () => {
  const m = Machine.create({ name: 'sched-test', kernel: HEARTBEAT, cmdline: 'count=1', memSizeMib: 4, vcpus: 2 }, new TextSink());
  try {
    for (const v of m.vcpus) {
      assert.equal(requestedSliceNs(v.tid), VCPU_THREAD_SLICE_NS);
      assert.equal(getPriority(v.tid), VCPU_THREAD_NICE);
    }
  } finally {
    await m.stop();
  }
});

test('a shell built asynchronously on a running VM\'s memfd takes its guest over with no heartbeat lost or repeated', async () => {
  const fdsBefore = openFdCount();
  const outA = new TextSink();
  const outB = new TextSink();
  const a = Machine.create({ name: 'shell-src', kernel: HEARTBEAT, cmdline: 'period_us=1000', memSizeMib: 32, vcpus: 1 }, outA);
  let b: Machine | undefined;
  try {
    a.start();
    await waitFor(() => heartbeats(outA.text).length >= 10, 5000, '10 heartbeats in A');
    // Another open of the same memfd, as a swap's B gets by SCM_RIGHTS; built while A's guest runs.
    const memfd = Memfd.fromFd(openSync(`/proc/self/fd/${a.memory.memfd.fd}`, 'r+'), 32 * 1024 * 1024);
    b = await Machine.createShellAsync({ name: 'shell-dst', kernel: new Uint8Array(0), cmdline: '', memSizeMib: 32, vcpus: 1, prefault: 'now' }, outB, memfd);
    assert.equal(b.state, 'created');
    await a.pause();
    b.restoreState(a.saveState());
    b.start();
    await waitFor(() => heartbeats(outB.text).length >= 10, 5000, '10 heartbeats in the shell');
    const seqs = [...heartbeats(outA.text), ...heartbeats(outB.text)].map((h) => h.seq);
    seqs.forEach((s, i) => assert.equal(s, i + 1, 'heartbeats go on where they stopped'));
  } finally {
    await a.stop();
    await b?.stop();
  }
  assert.equal(openFdCount(), fdsBefore);
});

test('a machine started paused does not run its guest until it is resumed', async () => {
  const out = new TextSink();
  const m = Machine.create({ name: 'start-paused', kernel: HEARTBEAT, cmdline: 'count=3 period_us=1000', memSizeMib: 16, vcpus: 1 }, out);
  try {
    m.start({ paused: true });
    await m.pause();
    assert.equal(m.state, 'paused');
    await sleep(50);
    assert.equal(out.text, '', 'the guest printed nothing: it never ran');
    m.resume();
    assert.deepEqual(await m.exited, { reason: 'guest-exit', status: 0 });
    assert.deepEqual(heartbeats(out.text).map((b) => b.seq), [1, 2, 3]);
  } finally {
    await m.stop();
  }
});

test('stopping a VM that ran leaves the event loop free: its teardown runs off the main thread', async () => {
  const fdsBefore = openFdCount();
  const m = Machine.create({ name: 'teardown', kernel: HEARTBEAT, cmdline: 'period_us=1000', memSizeMib: 64, vcpus: 1 }, new TextSink());
  m.start();
  await sleep(300); // the guest runs and its RAM is faulted in: destroying the VM and unmapping RAM take ~30 ms here
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  try {
    await m.stop();
  } finally {
    clearInterval(timer);
  }
  // On the main thread the teardown used to block every timer until it was done.
  assert.ok(ticks >= 3, `only ${ticks} 1 ms timer ticks ran during the stop`);
  assert.equal(openFdCount(), fdsBefore);
});
