// The pause-window rehearsals on /dev/kvm. B's, on a real probe guest: whatever point the short-lived
// guest has reached when it is paused (it may even end meanwhile), the rehearsal finishes and reports
// how it ended. A's, on a probe that never runs: it sleeps between steps and leaves nothing behind.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { rehearsePauseWindow, rehearseQuietly } from './rehearse.js';

const HEARTBEAT = new URL('../../../guest/build/heartbeat.elf', import.meta.url);

test('rehearsals in a row all end with the probe guest exiting 0, even when it ends while being paused', { skip: !existsSync(HEARTBEAT) || !existsSync('/dev/kvm') }, async () => {
  const kernel = new Uint8Array(readFileSync(HEARTBEAT));
  // Without the settling in Machine.pause, about 1 in 100 of these lost a system call and hung.
  for (let i = 0; i < 80; i++) {
    assert.deepEqual(await rehearsePauseWindow(kernel, 4), { reason: 'guest-exit', status: 0 }, `rehearsal ${i}`);
  }
});

test('A\'s quiet rehearsal sleeps after every step and closes its probe VM', { skip: !existsSync(HEARTBEAT) || !existsSync('/dev/kvm') }, async () => {
  const kernel = new Uint8Array(readFileSync(HEARTBEAT));
  const fds = (): number => readdirSync('/proc/self/fd').length;
  await rehearseQuietly(kernel, 1, 0); // the first VM of a process opens fds it keeps (e.g. the addon's)
  const before = fds();
  const t0 = performance.now();
  await rehearseQuietly(kernel, 3, 5);
  // 3 rounds of 4 steps, each followed by a 5 ms sleep.
  assert.ok(performance.now() - t0 >= 3 * 4 * 5 - 1, `took ${performance.now() - t0} ms`);
  assert.equal(fds(), before);
});
