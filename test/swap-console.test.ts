// A console client attached through the API stays attached across a hot swap, on the same
// connection: output keeps coming with no heartbeat missing, and input reaches the guest in the
// new instance. The connection itself is handed over as an fd; the client never reconnects.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { responseValidator } from '../src/instance/api/validate.js';
import { ROOT } from './helpers.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
const vmInfo = responseValidator('VmInfo');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await h.start(['--cpus', '0-1', '--mem-budget', '256M']);
  assert.equal((await h.http('POST', '/v1/vms', { name: 'hb', guest: 'heartbeat', memMib: 16, cmdline: 'period_us=2000', autostart: true })).status, 201);
});
after(() => h.cleanup());

test('an attached console follows the VM through a swap without reconnecting', async () => {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = request({ socketPath: h.socket, path: '/v1/vms/hb/console', headers: { connection: 'upgrade', upgrade: 'swapvisor-console' } });
    req.on('upgrade', (_res, s: Socket) => resolve(s));
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  let got = '';
  let closed = false;
  socket.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  socket.on('close', () => { closed = true; });
  await sleep(300);
  const aPid = h.ownerPid();
  const r = await h.cli(['swap', '--to', ROOT, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const bPid = h.ownerPid();
  assert.notEqual(bPid, aPid);
  h.track(bPid);
  await h.waitGone(aPid);
  const before = got.length;
  socket.write('typed after the swap');
  await sleep(600);
  assert.equal(closed, false, 'the connection survived the old instance');
  assert.ok(got.length > before, 'output keeps coming from the new instance');
  const seqs = [...got.matchAll(/^hb (\d+) \d+ \d+$/gm)].map((m) => Number(m[1]));
  assert.ok(seqs.length > 100);
  seqs.forEach((s, i) => assert.equal(s, seqs[0]! + i, `heartbeat ${i} on the stream is ${s}`));
  const info = vmInfo((await h.http('GET', '/v1/vms/hb')).json);
  assert.equal(info.console.bytesIn, 'typed after the swap'.length, 'input reached the guest in the new instance');
  socket.destroy();
});
