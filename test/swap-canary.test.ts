// Canary swaps (the patent's "duplicate, test, then move"): a clone of one VM runs isolated in the
// new build first. A healthy clone lets the swap go on; a failing one aborts it with nothing moved.
// Either way the original keeps running, its heartbeats in order.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, assertHeartbeatsContinuous } from './helpers.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
interface Report { state: string; vms: Array<{ name: string }>; canary: { vm: string; ok: boolean; detail: string } | null; error: { message: string } | null }

async function swap(args: string[]): Promise<{ code: number | null; report: Report }> {
  const r = await h.cli(['swap', '--to', ROOT, '--json', ...args], { timeoutMs: 90_000 });
  return { code: r.code, report: JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Report };
}

before(async () => {
  await h.start(['--cpus', '0-1', '--mem-budget', '512M']);
  assert.equal((await h.http('POST', '/v1/vms', { name: 'hb', guest: 'heartbeat', memMib: 16, cmdline: 'period_us=2000', autostart: true })).status, 201);
  assert.equal((await h.http('POST', '/v1/vms', { name: 'mc', guest: 'memcheck', memMib: 32, cmdline: 'mib=8', autostart: true })).status, 201);
  await sleep(500);
});
after(() => h.cleanup());

test('a failing canary aborts the swap with nothing moved; the original never stopped', async () => {
  const pid = h.ownerPid();
  const { code, report } = await swap(['--canary', 'mc', '--canary-secs', '1', '--canary-pattern', 'NEVER PRINTED']);
  assert.equal(code, 1);
  assert.equal(report.state, 'rolled-back');
  assert.deepEqual(report.vms, []);
  assert.equal(report.canary?.ok, false);
  assert.match(report.canary!.detail, /never printed/);
  assert.equal(h.ownerPid(), pid);
  const mc = (await h.http('GET', '/v1/vms/mc/console/log')).text;
  assert.doesNotMatch(mc, /FAIL/);
  assert.ok(existsSync(path.join(h.stateDir, 'vms', 'mc.canary.console.log')), 'the clone wrote to its own log');
  assert.doesNotMatch(readFileSync(path.join(h.stateDir, 'vms', 'mc.console.log'), 'latin1'), /FAIL/);
});

test('a dry run plans a canary swap but runs no clone', async () => {
  const { code, report } = await swap(['--canary', 'mc', '--canary-secs', '2', '--canary-pattern', '^mc pass \\d+ ok$', '--dry-run']);
  assert.equal(code, 0, 'a dry run never runs the canary');
  assert.equal(report.canary, null);
});

test('a healthy canary lets the swap go on; every VM moves with nothing lost', async () => {
  const pid = h.ownerPid();
  const { code, report } = await swap(['--canary', 'mc', '--canary-secs', '2', '--canary-pattern', '^mc pass \\d+ ok$']);
  assert.equal(code, 0, JSON.stringify(report));
  assert.equal(report.state, 'done');
  assert.equal(report.canary?.ok, true, report.canary?.detail);
  assert.deepEqual(report.vms.map((v) => v.name).sort(), ['hb', 'mc']);
  assert.notEqual(h.ownerPid(), pid);
  h.track(h.ownerPid());
  assertHeartbeatsContinuous((await h.http('GET', '/v1/vms/hb/console/log?tailBytes=1048576')).text);
  const clone = readFileSync(path.join(h.stateDir, 'vms', 'mc.canary.console.log'), 'latin1');
  assert.match(clone, /^mc pass \d+ ok$/m, 'the clone verified memory');
  assert.doesNotMatch(clone, /FAIL/, 'the clone saw a consistent copy of the RAM');
});
