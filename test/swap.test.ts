// The hot swap end to end on /dev/kvm: VMs of every guest-kit kind move from instance A to a new
// instance B while running, with nothing lost: heartbeats neither lost nor duplicated, memcheck
// verifying, timer counts continuous. Then a second swap in a row (A → B → C), a dry run, and a
// refused target. The SMP guest has its own test (swap-smp.test.ts).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { responseValidator } from '../src/instance/api/validate.js';
import { ROOT, assertHeartbeatsContinuous, niceOf } from './helpers.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
const vmInfo = responseValidator('VmInfo');
const instance = responseValidator('Instance');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Report { state: string; vms: Array<{ name: string; hostPauseUs: number }>; lost: string[]; guestRamBytesCopied: number; to: { pid: number | null } }

async function consoleOf(name: string): Promise<string> {
  return (await h.http('GET', `/v1/vms/${name}/console/log?tailBytes=1048576`)).text;
}

async function swap(): Promise<Report> {
  const r = await h.cli(['swap', '--to', ROOT, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `swap failed: ${r.stdout} ${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

before(async () => {
  await h.start(['--cpus', '0-1', '--mem-budget', '1G']);
  const vms = [
    { name: 'hb', guest: 'heartbeat', memMib: 16, cmdline: 'period_us=1000' },
    { name: 'mc', guest: 'memcheck', memMib: 64, cmdline: 'mib=16' },
    { name: 'tm', guest: 'timer', memMib: 16 },
  ];
  for (const v of vms) assert.equal((await h.http('POST', '/v1/vms', { ...v, autostart: true })).status, 201);
  await sleep(1500);
});
after(() => h.cleanup());

test('a swap moves every running VM to the new instance with nothing lost', async () => {
  const aPid = h.ownerPid();
  const report = await swap();
  assert.equal(report.state, 'done');
  assert.deepEqual(report.vms.map((v) => v.name).sort(), ['hb', 'mc', 'tm']);
  assert.deepEqual(report.lost, []);
  assert.equal(report.guestRamBytesCopied, 0);
  const bPid = h.ownerPid();
  assert.notEqual(bPid, aPid);
  assert.equal(report.to.pid, bPid);
  assert.equal(h.alive(aPid), false, 'instance A retired');
  h.track(bPid);
  const i = instance((await h.http('GET', '/v1/instance')).json);
  assert.equal(i.pid, bPid);
  await sleep(800);
  assert.deepEqual(i.partition.cpus.length >= 1, true);
  assert.deepEqual(instance((await h.http('GET', '/v1/instance')).json).partition.cpus, [0, 1], 'B grew to every CPU');
  assert.equal(niceOf(bPid), 0, "B's main thread is back at the daemon's nice once the swap is over");
  assert.ok(!existsSync(`/sys/fs/cgroup/cpuset/swapvisor/swapvisord-${aPid}`), "A's cpuset is gone");
  for (const name of ['hb', 'mc', 'tm']) assert.equal(vmInfo((await h.http('GET', `/v1/vms/${name}`)).json).state, 'running', name);
  assertHeartbeatsContinuous(await consoleOf('hb'));
  const mc = await consoleOf('mc');
  assert.doesNotMatch(mc, /FAIL/);
  const passes = [...mc.matchAll(/^mc pass (\d+) ok$/gm)].map((m) => Number(m[1]));
  passes.forEach((p, k) => assert.equal(p, passes[0]! + k, 'memcheck passes are consecutive'));
  const tm = [...(await consoleOf('tm')).matchAll(/^timer (\d+) (\d+)$/gm)].map((m) => ({ ticks: Number(m[1]), us: Number(m[2]) }));
  // One line per 1000 ticks crossed, in order. A line can come late (after a stall the guest catches
  // up on its TSC-deadline ticks before it prints), never early; lost ticks are the next test's job.
  tm.forEach((t, k) => {
    assert.ok(t.ticks >= (k + 1) * 1000, `timer line ${k} says ${t.ticks} ticks, before ${(k + 1) * 1000}`);
    if (k > 0) assert.ok(t.ticks > tm[k - 1]!.ticks, 'tick counts only grow');
  });
});

test('the timer guest loses no ticks: its count catches up with its own clock', async () => {
  // While the partition is split, the guests share one CPU and the timer guest may fall behind;
  // its TSC-deadline timer then catches up. Lost ticks would not.
  const deadline = Date.now() + 30_000;
  let gap = Infinity;
  let last = { ticks: 0, us: 0 };
  while (Date.now() < deadline) {
    const lines = [...(await consoleOf('tm')).matchAll(/^timer (\d+) (\d+)$/gm)];
    const m = lines[lines.length - 1]!;
    last = { ticks: Number(m[1]), us: Number(m[2]) };
    gap = Math.abs(last.us - last.ticks * 1000) / (last.ticks * 1000);
    if (gap < 0.03) break;
    await sleep(500);
  }
  assert.ok(gap < 0.03, `timer: ${last.ticks} ticks in ${last.us} us of guest TSC time`);
});

test('a second swap in a row (A -> B -> C) keeps the VMs running', async () => {
  const bPid = h.ownerPid();
  const report = await swap();
  assert.equal(report.state, 'done');
  const cPid = h.ownerPid();
  assert.notEqual(cPid, bPid);
  h.track(cPid);
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/hb')).json).state, 'running');
  assertHeartbeatsContinuous(await consoleOf('hb'));
  assert.doesNotMatch(await consoleOf('mc'), /FAIL/);
});

test('a dry run prints the plan and changes nothing', async () => {
  const pid = h.ownerPid();
  const r = await h.cli(['swap', '--to', ROOT, '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^plan: swap 0\.\d+\.\d+ -> 0\.\d+\.\d+ at /m);
  assert.match(r.stdout, /keep CPUs 0 for the running instance, start the new one on CPUs 1/);
  assert.match(r.stdout, /move \d VM\(s\): /);
  assert.equal(h.ownerPid(), pid);
});

test('a swap to something that is not a swapvisor build is refused and nothing changes', async () => {
  const pid = h.ownerPid();
  const r = await h.cli(['swap', '--to', '/tmp']);
  assert.equal(r.code, 1);
  assert.match(r.stdout + r.stderr, /is not a built swapvisor/);
  assert.equal(h.ownerPid(), pid);
  assert.equal(niceOf(pid), 0, "A's main thread is back at the daemon's nice");
  assert.deepEqual(instance((await h.http('GET', '/v1/instance')).json).partition.cpus, [0, 1]);
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/hb')).json).state, 'running');
});
