// Property tests against a live daemon: random, oversized and malformed bodies, unknown fields,
// wrong types and wrong-state transitions always get a JSON error (never a crash), and a VM that
// was running before keeps running throughout.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { responseValidator } from '../src/instance/api/validate.js';
import { DaemonHarness } from './daemon-harness.js';

const h = new DaemonHarness();
let pid = 0;
const errorBody = responseValidator('Error');
const vmInfo = responseValidator('VmInfo');

before(async () => {
  pid = await h.start();
  const r = await h.http('POST', '/v1/vms', { name: 'witness', guest: 'heartbeat', memMib: 16, autostart: true });
  assert.equal(r.status, 201, r.text);
});
after(() => h.cleanup());

async function witnessBytes(): Promise<number> {
  const v = vmInfo((await h.http('GET', '/v1/vms/witness')).json);
  assert.equal(v.state, 'running');
  return v.console.bytesOut;
}

/** Every answer is either a success the schema allows or a JSON error with a known code. */
function checkAnswer(status: number, json: unknown, text: string): void {
  if (status >= 200 && status < 300) return;
  assert.ok(status >= 400 && status < 600, `status ${status}`);
  const e = errorBody(json);
  assert.ok(e.error.message.length > 0 && !e.error.message.includes('\n'), `one-line message: ${text}`);
  assert.ok(!/\bat .*\.js:\d+/.test(e.error.message), 'no stack trace');
}

const vmConfigish = fc.record({
  name: fc.oneof(fc.string(), fc.constantFrom('ok-name', 'witness', '', 'UPPER', '../etc', 'a'.repeat(80))),
  guest: fc.oneof(fc.constantFrom('heartbeat', 'memcheck', 'nope'), fc.integer(), fc.constant(null)),
  kernel: fc.oneof(fc.string(), fc.constant('/nonexistent'), fc.constant(42)),
  memMib: fc.oneof(fc.integer({ min: -10, max: 1 << 20 }), fc.double(), fc.string()),
  vcpus: fc.oneof(fc.integer({ min: -2, max: 100 }), fc.boolean()),
  cmdline: fc.oneof(fc.string({ maxLength: 3000 }), fc.integer()),
  entry: fc.string(),
  surprise: fc.anything(),
}, { requiredKeys: [] });

test('random bodies to POST /v1/vms get JSON errors; the daemon and the running VM carry on', async () => {
  const before = await witnessBytes();
  await fc.assert(fc.asyncProperty(fc.oneof(fc.anything(), vmConfigish, fc.string({ maxLength: 200 })), async (body) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body) ?? 'undefined';
    const r = await h.http('POST', '/v1/vms', raw);
    checkAnswer(r.status, r.json, r.text);
    if (r.status === 201) await h.http('DELETE', `/v1/vms/${(r.json as { name: string }).name}?force=true`);
  }), { numRuns: 300 });
  assert.ok(h.alive(pid));
  assert.ok((await witnessBytes()) > before, 'the witness VM kept printing');
});

test('random methods, paths, queries and state transitions get JSON errors', async () => {
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH');
  const path = fc.oneof(
    fc.constantFrom('/v1/vms', '/v1/instance', '/v1/platform', '/metrics', '/v1/vms/witness/console/log', '/', '/v1'),
    fc.tuple(fc.constantFrom('witness', 'ghost', 'x'), fc.constantFrom('start', 'pause', 'resume', 'stop', 'console', 'console/log', 'nope'))
      .map(([n, a]) => `/v1/vms/${n}/${a}`),
    fc.string({ maxLength: 50 }).map((s) => `/v1/${encodeURIComponent(s)}`),
  );
  const query = fc.oneof(fc.constant(''), fc.constantFrom('?tailBytes=0', '?tailBytes=99999999', '?tailBytes=abc', '?force=maybe', '?format=xml', '?force=false'));
  await fc.assert(fc.asyncProperty(method, path, query, fc.option(fc.jsonValue(), { nil: undefined }), async (m, p, q, body) => {
    // Never stop or remove the witness: that is a legitimate request, not bad input.
    if (p.startsWith('/v1/vms/witness') && (p.endsWith('/stop') || p.endsWith('/pause') || m === 'DELETE')) return;
    const r = await h.http(m, `${p}${q}`, body === undefined ? undefined : JSON.stringify(body));
    checkAnswer(r.status, r.json ?? (r.status < 300 ? {} : undefined), r.text);
  }), { numRuns: 300 });
  assert.ok(h.alive(pid));
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/witness')).json).state, 'running');
});

test('wrong-state transitions are 409 and change nothing', async () => {
  assert.equal((await h.http('POST', '/v1/vms', { name: 'idle', guest: 'heartbeat', memMib: 16 })).status, 201);
  for (const action of ['pause', 'resume', 'stop']) {
    const r = await h.http('POST', `/v1/vms/idle/${action}`);
    assert.equal(r.status, 409, action);
    assert.equal(errorBody(r.json).error.code, 'ERR_VM_STATE');
  }
  assert.equal((await h.http('POST', '/v1/vms/witness/start')).status, 409);
  assert.equal((await h.http('POST', '/v1/vms/witness/resume')).status, 409);
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/idle')).json).state, 'created');
  assert.equal(vmInfo((await h.http('GET', '/v1/vms/witness')).json).state, 'running');
});
