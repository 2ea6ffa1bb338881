// processRunning against real processes: one running, one a zombie its parent never reaps, one gone.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { processRunning } from './process-state.js';

test('a running process runs; a zombie and a pid that is gone do not', async () => {
  // The shell starts a short sleep, prints its pid, and becomes a long sleep that never reaps it.
  const parent = spawn('/bin/sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const childPid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(d.toString()))));
    assert.ok(processRunning(parent.pid!), 'the parent runs');
    const end = Date.now() + 3000;
    while (processRunning(childPid) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(processRunning(childPid), false, 'the exited, unreaped child counts as not running');
  } finally {
    parent.kill('SIGKILL');
  }
  await new Promise((r) => parent.once('exit', r));
  assert.equal(processRunning(parent.pid!), false, 'a reaped process is gone');
});
