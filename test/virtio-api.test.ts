// VMs with virtio devices through the daemon's API and CLI: bad device input gets one clear error
// and leaves a witness VM running; a tap the instance created disappears with its VM; the virtio
// console stream is readable through the API.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DaemonHarness } from './daemon-harness.js';
import { type TestNetns, createTestNetns } from './netns.js';

const h = new DaemonHarness();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let ns: TestNetns;

before(async () => {
  ns = createTestNetns();
  await h.start(['--mem-budget', '512M']);
  assert.equal((await h.http('POST', '/v1/vms', { name: 'witness', guest: 'heartbeat', memMib: 16, cmdline: 'period_us=10000', autostart: true })).status, 201);
});
after(async () => {
  await h.cleanup();
  ns?.dispose();
});

async function witnessRuns(): Promise<void> {
  const v = (await h.http('GET', '/v1/vms/witness')).json as { state: string };
  assert.equal(v.state, 'running');
}

test('bad device input is refused with one clear error, and nothing running is disturbed', async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['missing image', ['--disk', 'id=vda,path=/nonexistent/disk.img'], /disk.img/],
    ['relative path', ['--disk', 'id=vda,path=disk.img'], /path/],
    ['duplicate ids', ['--disk', `id=vda,path=${path.join(h.stateDir, 'a.img')}`, '--net', 'id=vda,tap=svx0'], /used twice/],
    ['bad tap name', ['--net', 'id=eth0,tap=has space'], /tap/],
    ['missing netns', ['--net', 'id=eth0,tap=svx1,netns=no-such-ns-here'], /no-such-ns-here/],
    ['bad option', ['--disk', 'id=vda,file=/x'], /--disk/],
  ];
  writeFileSync(path.join(h.stateDir, 'a.img'), Buffer.alloc(4096));
  for (const [what, args, pattern] of cases) {
    const r = await h.cli(['vm', 'create', `bad-${cases.findIndex((c) => c[0] === what)}`, '--guest', 'blkcheck', '--mem', '16M', '--start', ...args]);
    assert.notEqual(r.code, 0, what);
    assert.match(r.stderr, pattern, what);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line, no stack: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\s+at \S+ \(/, what);
  }
  // An image whose size is not whole sectors.
  writeFileSync(path.join(h.stateDir, 'odd.img'), Buffer.alloc(1000));
  const r = await h.http('POST', '/v1/vms', { name: 'odd', guest: 'blkcheck', memMib: 16, autostart: true, disks: [{ id: 'vda', path: path.join(h.stateDir, 'odd.img') }] });
  assert.equal(r.status, 400, r.text);
  assert.equal((r.json as { error: { code: string } }).error.code, 'ERR_VM_IMAGE');
  assert.match((r.json as { error: { message: string } }).error.message, /512/);
  await witnessRuns();
});

test('a tap the instance created goes away with its VM; the vconsole log is served', async () => {
  const tap = `svy${process.pid % 100000}`;
  const r = await h.http('POST', '/v1/vms', { name: 'nv', guest: 'vconecho', memMib: 16, autostart: true, vconsole: true, rng: true, nets: [{ id: 'eth0', tap, netns: ns.name }] });
  assert.equal(r.status, 201, r.text);
  assert.match(ns.exec('ip', ['link', 'show', tap]), new RegExp(tap));
  const end = Date.now() + 20_000;
  let log = '';
  while (!log.includes('vcon hello') && Date.now() < end) {
    await sleep(100);
    log = (await h.http('GET', '/v1/vms/nv/console/log?stream=vconsole')).text;
  }
  assert.match(log, /vcon hello/);
  assert.equal((await h.http('GET', '/v1/vms/witness/console/log?stream=vconsole')).status, 409, 'a VM without a virtio console says so');
  const metrics = (await h.http('GET', '/metrics')).text;
  const tx = /^swapvisor_virtio_events_total\{vm="nv",device="vconsole",kind="console",event="txBytes"\} (\d+)$/m.exec(metrics);
  assert.ok(tx && Number(tx[1]) >= 'vcon hello\n'.length, 'virtio console bytes are counted in /metrics');
  assert.equal((await h.http('POST', '/v1/vms/nv/stop')).status, 200);
  await sleep(200);
  assert.throws(() => execFileSync('ip', ['-n', ns.name, 'link', 'show', tap], { stdio: 'pipe' }), 'the tap is gone');
  await witnessRuns();
});
