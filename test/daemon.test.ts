// The instance end to end: the daemon started by the CLI, VMs created and driven through the API
// and the CLI, responses checked against api/openapi.yaml, and nothing left behind.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { responseValidator } from '../src/instance/api/validate.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
let pid = 0;
const vmInfo = responseValidator('VmInfo');
const vmList = responseValidator('VmList');
const instance = responseValidator('Instance');
const errorBody = responseValidator('Error');

before(async () => { pid = await h.start(['--cpus', '0-1']); });
after(() => h.cleanup());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(f: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('the API socket is owner-only and the instance describes its partition', async () => {
  assert.equal(statSync(h.socket).mode & 0o777, 0o600);
  const r = await h.http('GET', '/v1/instance');
  assert.equal(r.status, 200);
  const i = instance(r.json);
  assert.equal(i.pid, pid);
  assert.deepEqual(i.partition.cpus, [0, 1]);
  assert.equal(i.partition.memBudgetMib, 256);
  assert.ok(i.platform.cpuCount >= 1);
});

test('a heartbeat VM is created, runs, pauses, resumes and stops through the CLI', async () => {
  const c = await h.cli(['vm', 'create', 'hb1', '--guest', 'heartbeat', '--mem', '16M', '--cmdline', 'period_us=2000', '--start']);
  assert.equal(c.code, 0, c.stderr);
  const running = vmInfo((await h.http('GET', '/v1/vms/hb1')).json);
  assert.equal(running.state, 'running');
  assert.equal(running.vcpus.length, 1);
  assert.ok(running.vcpus[0]!.tid! > 0);
  const log = await waitFor(async () => {
    const r = await h.http('GET', '/v1/vms/hb1/console/log?tailBytes=4096');
    return /hb 5 /.test(r.text) ? r.text : undefined;
  }, 'five heartbeats');
  assert.match(log, /^heartbeat start period_us=2000/m);
  // The state dir says what the API said, as soon as the API has answered (the write is asynchronous).
  const stored = (): string => (JSON.parse(readFileSync(`${h.stateDir}/vms/hb1.json`, 'utf8')) as { runState: string }).runState;
  assert.equal(stored(), 'running');
  assert.equal((await h.cli(['vm', 'pause', 'hb1'])).code, 0);
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/hb1')).json).state, 'paused');
  assert.equal(stored(), 'paused');
  const again = await h.cli(['vm', 'pause', 'hb1']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^swapvisor: error: VM hb1 is paused; only a running VM can be paused$/m);
  assert.equal((await h.cli(['vm', 'resume', 'hb1'])).code, 0);
  assert.equal(stored(), 'running');
  const ls = await h.cli(['vm', 'ls']);
  assert.match(ls.stdout, /^NAME\s+STATE\s+VCPUS\s+MEMORY/m);
  assert.match(ls.stdout, /^hb1\s+running\s+1\s+16M/m);
  const stop = await h.cli(['vm', 'stop', 'hb1', '--json']);
  assert.equal(stop.code, 0, stop.stderr);
  const stopped = vmInfo(JSON.parse(stop.stdout));
  assert.equal(stopped.state, 'stopped');
  assert.equal(stopped.exit?.reason, 'stopped');
  assert.equal(stored(), 'stopped');
  const seqs = [...log.matchAll(/^hb (\d+) /gm)].map((m) => Number(m[1]));
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
});

test('a guest that exits on its own reports its status', async () => {
  const r = await h.http('POST', '/v1/vms', { name: 'short', guest: 'heartbeat', memMib: 16, cmdline: 'count=3', autostart: true });
  assert.equal(r.status, 201, r.text);
  const done = await waitFor(async () => {
    const v = vmInfo((await h.http('GET', '/v1/vms/short')).json);
    return v.state === 'stopped' ? v : undefined;
  }, 'the guest to exit');
  assert.deepEqual(done.exit, { reason: 'guest-exit', status: 0, detail: null, rip: null });
  assert.equal((await h.http('DELETE', '/v1/vms/short')).status, 204);
  assert.equal((await h.http('GET', '/v1/vms/short')).status, 404);
});

test('a crashing guest is marked crashed with the reason; other VMs keep running', async () => {
  assert.equal((await h.http('POST', '/v1/vms', { name: 'steady', guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  assert.equal((await h.http('POST', '/v1/vms', { name: 'boom', guest: 'heartbeat', memMib: 16, cmdline: 'fault=triple', autostart: true })).status, 201);
  const crashed = await waitFor(async () => {
    const v = vmInfo((await h.http('GET', '/v1/vms/boom')).json);
    return v.state === 'crashed' ? v : undefined;
  }, 'the crash');
  assert.equal(crashed.exit?.reason, 'fault');
  assert.match(crashed.exit?.detail ?? '', /triple-fault on vCPU 0/);
  assert.match(crashed.exit?.rip ?? '', /^0x[0-9a-f]+$/);
  const before = (await h.http('GET', '/v1/vms/steady')).json as { console: { bytesOut: number } };
  await sleep(200);
  const steady = vmInfo((await h.http('GET', '/v1/vms/steady')).json);
  assert.equal(steady.state, 'running');
  assert.ok(steady.console.bytesOut > before.console.bytesOut, 'steady kept printing');
  await h.http('DELETE', '/v1/vms/boom');
  await h.http('DELETE', '/v1/vms/steady?force=true');
});

test('admission control refuses a VM over the memory budget with 507', async () => {
  const r = await h.http('POST', '/v1/vms', { name: 'big', guest: 'heartbeat', memMib: 512, autostart: true });
  assert.equal(r.status, 507);
  assert.equal(errorBody(r.json).error.code, 'ERR_BUDGET_EXCEEDED');
  assert.match(errorBody(r.json).error.message, /512 MiB/);
  assert.equal((await h.http('GET', '/v1/vms/big')).status, 404, 'a refused autostart leaves no VM behind');
});

test('errors carry a stable code and the right status', async () => {
  const cases: Array<[string, string, string | object | undefined, number, string]> = [
    ['GET', '/v1/vms/nope', undefined, 404, 'ERR_NOT_FOUND'],
    ['POST', '/v1/vms/nope/start', undefined, 404, 'ERR_NOT_FOUND'],
    ['PUT', '/v1/vms', {}, 405, 'ERR_METHOD_NOT_ALLOWED'],
    ['GET', '/v2/everything', undefined, 404, 'ERR_NOT_FOUND'],
    ['POST', '/v1/vms', '{not json', 400, 'ERR_VALIDATION'],
    ['POST', '/v1/vms', { name: 'x', guest: 'heartbeat', memMib: 16, turbo: true }, 400, 'ERR_VALIDATION'],
    ['POST', '/v1/vms', { name: 'x', guest: 'heartbeat', kernel: '/vmlinux', memMib: 16 }, 400, 'ERR_VALIDATION'],
    ['POST', '/v1/vms', { name: 'x', kernel: '/nonexistent/vmlinux', memMib: 16, autostart: true }, 400, 'ERR_VM_IMAGE'],
    ['POST', '/v1/vms', 'x'.repeat(70 * 1024), 413, 'ERR_BODY_TOO_LARGE'],
    ['GET', '/v1/vms/x/console/log?tailBytes=0', undefined, 404, 'ERR_NOT_FOUND'],
  ];
  for (const [method, url, body, status, code] of cases) {
    const r = await h.http(method, url, body);
    assert.equal(r.status, status, `${method} ${url}: ${r.text}`);
    assert.equal(errorBody(r.json).error.code, code, `${method} ${url}`);
  }
  const dup = await h.http('POST', '/v1/vms', { name: 'dup', guest: 'heartbeat', memMib: 16 });
  assert.equal(dup.status, 201);
  const again = await h.http('POST', '/v1/vms', { name: 'dup', guest: 'heartbeat', memMib: 16 });
  assert.equal(again.status, 409);
  assert.equal(errorBody(again.json).error.code, 'ERR_VM_EXISTS');
  const wrong = await h.http('POST', '/v1/vms/dup/resume');
  assert.equal(wrong.status, 409);
  assert.equal(errorBody(wrong.json).error.code, 'ERR_VM_STATE');
  await h.http('DELETE', '/v1/vms/dup');
  vmList((await h.http('GET', '/v1/vms')).json);
});

test('console attach streams guest output and sends input', async () => {
  assert.equal((await h.http('POST', '/v1/vms', { name: 'con', guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = request({ socketPath: h.socket, path: '/v1/vms/con/console', headers: { connection: 'upgrade', upgrade: 'swapvisor-console' } });
    req.on('upgrade', (_res, s: Socket) => resolve(s));
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  let got = '';
  socket.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  socket.write('hello guest');
  await waitFor(async () => ((got.match(/^hb \d+ /gm) ?? []).length >= 3 ? true : undefined), 'streamed heartbeats');
  const v = vmInfo((await h.http('GET', '/v1/vms/con')).json);
  assert.equal(v.console.bytesIn, 'hello guest'.length);
  socket.destroy();
  await h.http('DELETE', '/v1/vms/con?force=true');
});

test('swapvisor console streams a VM console until interrupted', async () => {
  assert.equal((await h.http('POST', '/v1/vms', { name: 'cli-con', guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  const r = await h.cli(['console', 'cli-con'], { signalAfterMs: 700 });
  assert.equal(r.code, 130, r.stderr);
  assert.ok((r.stdout.match(/^hb \d+ \d+ \d+$/gm) ?? []).length >= 3, r.stdout);
  const missing = await h.cli(['console', 'ghost']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^swapvisor: error: no VM named ghost/m);
  await h.http('DELETE', '/v1/vms/cli-con?force=true');
});

test('metrics are in the Prometheus text format', async () => {
  assert.equal((await h.http('POST', '/v1/vms', { name: 'met', guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  await sleep(100);
  const r = await h.http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(r.text, /^# TYPE swapvisor_vm_exits_total counter$/m);
  assert.match(r.text, /^swapvisor_vms\{state="running"\} [1-9]\d*$/m);
  const exits = Number(/^swapvisor_vm_exits_total\{vm="met"\} (\d+)$/m.exec(r.text)![1]);
  assert.ok(exits > 0);
  assert.match(r.text, /^swapvisor_vm_console_out_bytes_total\{vm="met"\} [1-9]\d*$/m);
  for (const line of r.text.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[\d.e+-]+)$/);
  await h.http('DELETE', '/v1/vms/met?force=true');
});

test('a second daemon on the same state dir refuses to run', async () => {
  const r = await h.cli(['daemon', 'start', '--foreground', '--mem-budget', '64M'], { timeoutMs: 20_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`another swapvisor daemon \\(pid ${pid}\\) already owns`));
});

test('host info shows the partition and the platform record', async () => {
  const r = await h.cli(['host', 'info']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^cpus\s+0,1/m);
  assert.match(r.stdout, /^memory\s+\d+ of 256 MiB/m);
  const p = await h.cli(['host', 'info', '--platform']);
  assert.equal(p.code, 0, p.stderr);
  assert.ok(p.stdout.length > 100);
  assert.ok(existsSync(`${h.stateDir}/platform.rec`));
});

test('daemon stop stops every VM and leaves no socket, cgroup or process', async () => {
  assert.equal((await h.http('POST', '/v1/vms', { name: 'last', guest: 'heartbeat', memMib: 16, autostart: true })).status, 201);
  const tid = vmInfo((await h.http('GET', '/v1/vms/last')).json).vcpus[0]!.tid!;
  const r = await h.cli(['daemon', 'stop']);
  assert.equal(r.code, 0, r.stderr);
  await h.waitGone(pid);
  assert.equal(existsSync(h.socket), false);
  assert.equal(existsSync(`/sys/fs/cgroup/cpuset/swapvisor/swapvisord-${pid}`), false);
  assert.equal(existsSync(`/proc/${tid}`), false);
  const stored = JSON.parse(readFileSync(`${h.stateDir}/vms/last.json`, 'utf8')) as { runState: string };
  assert.equal(stored.runState, 'stopped');
  const status = await h.cli(['daemon', 'status']);
  assert.equal(status.code, 3);
  assert.match(status.stdout, /^not running/);
});
