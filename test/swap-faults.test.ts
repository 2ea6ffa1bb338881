// Fault injection at every step boundary of a hot swap (SWAPVISOR_FAULT, see src/swap/faults.ts).
// While A lives, no VM is lost and not one heartbeat is lost or duplicated: the swap rolls back.
// When A itself dies mid-swap, B owns every VM it runs and the rest are reported lost, exactly.
// Each point runs SWAPVISOR_FAULT_RUNS times (default 2; the closing note quotes longer runs).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { responseValidator } from '../src/instance/api/validate.js';
import { ROOT, assertHeartbeatsContinuous } from './helpers.js';
import { DaemonHarness } from './daemon-harness.js';

const RUNS = Number(process.env['SWAPVISOR_FAULT_RUNS'] ?? 2);
const vmInfo = responseValidator('VmInfo');
const instance = responseValidator('Instance');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const harnesses: DaemonHarness[] = [];
after(async () => { for (const h of harnesses) await h.cleanup(); });

async function setUp(fault: string): Promise<{ h: DaemonHarness; aPid: number }> {
  const h = new DaemonHarness();
  harnesses.push(h);
  const aPid = await h.start(['--cpus', '0-1', '--mem-budget', '256M'], { SWAPVISOR_FAULT: fault });
  for (const name of ['one', 'two']) {
    assert.equal((await h.http('POST', '/v1/vms', { name, guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  }
  await sleep(300);
  return { h, aPid };
}

async function swapOutcome(h: DaemonHarness): Promise<{ code: number | null; out: string }> {
  const r = await h.cli(['swap', '--to', ROOT, '--json'], { timeoutMs: 90_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

const ROLLBACK_POINTS: Array<[string, RegExp]> = [
  ['b-exit-before-ready', /did not come up/],
  ['b-unhealthy', /failed its health check/],
  ['b-crash-after-shell', /./],
  ['corrupt-state', /checksum|ERR_STATE/i],
  ['truncate-state', /truncat|ERR_STATE/i],
  ['b-reject-state', /b-reject-state/],
  ['b-crash-on-state', /closed|moving one failed/],
];

for (const [fault, why] of ROLLBACK_POINTS) {
  test(`fault ${fault}: the swap rolls back and every VM runs on in A with no heartbeat lost (x${RUNS})`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const { h, aPid } = await setUp(fault);
      const { code, out } = await swapOutcome(h);
      assert.equal(code, 1, `the swap must fail: ${out}`);
      const report = JSON.parse(out.slice(out.indexOf('{'))) as { state: string; lost: string[]; error: { message: string }; to: { pid: number | null } };
      assert.equal(report.state, 'rolled-back');
      assert.deepEqual(report.lost, []);
      assert.match(report.error.message, why);
      assert.equal(h.ownerPid(), aPid, 'A still owns the state dir');
      const i = instance((await h.http('GET', '/v1/instance')).json);
      assert.equal(i.pid, aPid);
      assert.deepEqual(i.partition.cpus, [0, 1], 'A grew back');
      await sleep(200);
      for (const name of ['one', 'two']) {
        assert.equal(vmInfo((await h.http('GET', `/v1/vms/${name}`)).json).state, 'running');
        assertHeartbeatsContinuous((await h.http('GET', `/v1/vms/${name}/console/log?tailBytes=1048576`)).text);
      }
      assert.ok(report.to.pid !== null && report.to.pid > 0, 'B was started');
      assert.equal(h.alive(report.to.pid), false, 'B is gone');
      assert.equal(existsSync(`/sys/fs/cgroup/cpuset/swapvisor/swapvisord-${report.to.pid}`), false, "B's cpuset is gone");
      await h.cli(['daemon', 'stop']);
    }
  });
}

test(`fault a-crash-after-first-vm: B owns the VM it runs, the journal and B say exactly what was lost (x${RUNS})`, async () => {
  for (let run = 0; run < RUNS; run++) {
    const { h, aPid } = await setUp('a-crash-after-first-vm');
    await swapOutcome(h);
    await h.waitGone(aPid);
    // B takes over: it owns the first VM, which runs on; the second died with A and is reported lost.
    let owner = 0;
    for (let i = 0; i < 100 && (owner === 0 || owner === aPid); i++) {
      await sleep(100);
      try { owner = h.ownerPid(); } catch { owner = 0; }
    }
    assert.notEqual(owner, aPid);
    h.track(owner);
    let states: Record<string, string> = {};
    for (let i = 0; i < 50; i++) {
      const r = await h.http('GET', '/v1/vms').catch(() => undefined);
      if (r?.status === 200) {
        states = Object.fromEntries((r.json as { vms: Array<{ name: string; state: string }> }).vms.map((v) => [v.name, v.state]));
        if (Object.keys(states).length === 2) break;
      }
      await sleep(100);
    }
    assert.deepEqual(Object.values(states).sort(), ['lost', 'running']);
    const runningName = Object.keys(states).find((n) => states[n] === 'running')!;
    assertHeartbeatsContinuous((await h.http('GET', `/v1/vms/${runningName}/console/log?tailBytes=1048576`)).text);
    await h.cli(['daemon', 'stop']);
  }
});

test(`fault a-crash-before-retire: B takes over every moved VM and none is lost (x${RUNS})`, async () => {
  for (let run = 0; run < RUNS; run++) {
    const { h, aPid } = await setUp('a-crash-before-retire');
    await swapOutcome(h);
    await h.waitGone(aPid);
    let vms: Array<{ name: string; state: string }> = [];
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      const r = await h.http('GET', '/v1/vms').catch(() => undefined);
      if (r?.status === 200) {
        vms = (r.json as { vms: Array<{ name: string; state: string }> }).vms;
        if (vms.length === 2) break;
      }
    }
    h.track(h.ownerPid());
    assert.deepEqual(vms.map((v) => v.state), ['running', 'running']);
    for (const v of vms) assertHeartbeatsContinuous((await h.http('GET', `/v1/vms/${v.name}/console/log?tailBytes=1048576`)).text);
    await h.cli(['daemon', 'stop']);
  }
});
