// A two-vCPU guest moved by a hot swap in the middle of its work: shared atomics (lock xadd from
// both vCPUs) and IPIs from one vCPU to the other must come out exact after the move.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT } from './helpers.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(() => h.start(['--cpus', '0-1', '--mem-budget', '256M']).then(() => undefined));
after(() => h.cleanup());

test('the SMP guest finishes its shared atomics and IPIs after being moved mid-run', async () => {
  const created = await h.http('POST', '/v1/vms', { name: 'smp', guest: 'smp', memMib: 16, vcpus: 2, cmdline: 'iters=20000000 ipis=20000', autostart: true });
  assert.equal(created.status, 201, created.text);
  let text = '';
  for (let i = 0; i < 100 && !/^smp ap up/m.test(text); i++) {
    await sleep(20);
    text = (await h.http('GET', '/v1/vms/smp/console/log')).text;
  }
  assert.match(text, /^smp ap up/m, 'both vCPUs run before the swap');
  const r = await h.cli(['swap', '--to', ROOT, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const report = JSON.parse(r.stdout) as { state: string; vms: Array<{ name: string; hostPauseUs: number; pauseStepsUs?: unknown }> };
  assert.equal(report.state, 'done');
  h.track(h.ownerPid());
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !/^smp done/m.test(text)) {
    await sleep(500);
    text = (await h.http('GET', '/v1/vms/smp/console/log')).text;
  }
  assert.ok(report.vms.some((v) => v.name === 'smp'), 'the guest was still running when it moved');
  // The guest times each IPI out after 200 ms of TSC time, and the TSC runs on through the pause.
  const move = JSON.stringify(report.vms.map((v) => ({ pauseUs: v.hostPauseUs, steps: v.pauseStepsUs })));
  assert.match(text, /^smp cpus=2 counter=40000000 ipis=20000$/m, `the move: ${move}`);
  assert.match(text, /^smp done ok$/m);
});
