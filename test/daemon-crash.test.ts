// Durability: a daemon killed with SIGKILL leaves a consistent state dir; the next daemon lists the
// VMs that were running as lost, and restarts them with --restart-lost.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { responseValidator } from '../src/instance/api/validate.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
after(() => h.cleanup());
const vmInfo = responseValidator('VmInfo');

test('SIGKILL of the daemon: VMs are reported lost, not silently dropped, and can be restarted', async () => {
  const pid = await h.start();
  for (const name of ['a', 'b']) {
    assert.equal((await h.http('POST', '/v1/vms', { name, guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  }
  assert.equal((await h.http('POST', '/v1/vms', { name: 'idle', guest: 'heartbeat', memMib: 16 })).status, 201);
  process.kill(pid, 'SIGKILL');
  await h.waitGone(pid);

  // The state dir is consistent: every definition parses, no temp files are left half-written.
  const files = readdirSync(`${h.stateDir}/vms`).filter((f) => f.endsWith('.json'));
  assert.deepEqual(files.sort(), ['a.json', 'b.json', 'idle.json']);
  for (const f of files) JSON.parse(readFileSync(`${h.stateDir}/vms/${f}`, 'utf8'));

  const pid2 = await h.start();
  const a = vmInfo((await h.http('GET', '/v1/vms/a')).json);
  assert.equal(a.state, 'lost');
  assert.equal(a.exit?.reason, 'lost');
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/idle')).json).state, 'created');
  const log = readFileSync(`${h.stateDir}/daemon.log`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; pid: number; lost?: string[] });
  const lostLine = log.find((l) => l.msg === 'vms.lost' && l.pid === pid2);
  assert.deepEqual(lostLine?.lost, ['a', 'b']);
  const ls = await h.cli(['vm', 'ls']);
  assert.match(ls.stdout, /^a\s+lost\s/m);

  await h.cli(['daemon', 'stop']);
  await h.waitGone(pid2);
  // Lost VMs stay lost across a clean restart until someone acts on them.
  const pid3 = await h.start(['--restart-lost']);
  for (const name of ['a', 'b']) assert.equal(vmInfo((await h.http('GET', `/v1/vms/${name}`)).json).state, 'running');
  await h.cli(['daemon', 'stop']);
  await h.waitGone(pid3);
});
