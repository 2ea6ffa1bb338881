// SLOW (~1 min: it builds another copy): a real swap between two builds of this repository — the
// previous build, an earlier commit pinned in test/previous-build.txt, checked out and built in a
// temp dir — and HEAD, in both directions: N-1 -> N, then back N -> N-1. Nothing may be lost.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, assertHeartbeatsContinuous } from './helpers.js';
import { DaemonHarness } from './daemon-harness.js';

const pinned = readFileSync(path.join(ROOT, 'test', 'previous-build.txt'), 'utf8').split(/\s/)[0]!;
const inHistory = spawnSync('git', ['-C', ROOT, 'cat-file', '-e', `${pinned}^{commit}`]).status === 0;
const prevDir = mkdtempSync(path.join(tmpdir(), 'swapvisor-prev-'));
const h = new DaemonHarness();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cliOf(dir: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'swapvisor.cjs'), ...args, '--state-dir', h.stateDir], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

before(() => {
  if (!inHistory) return;
  // The pinned commit's own files, built by its own set-up script, exactly as a user would.
  execFileSync('bash', ['-c', `git -C '${ROOT}' archive ${pinned} | tar -x -C '${prevDir}'`]);
  execFileSync('bash', [path.join(prevDir, 'scripts', 'setup.sh')], { cwd: prevDir, stdio: 'ignore', timeout: 600_000 });
});
after(async () => {
  await h.cleanup();
  rmSync(prevDir, { recursive: true, force: true });
});

test('[slow] swap from the previous build (pinned commit) to HEAD and back', { skip: !inHistory && `commit ${pinned} is not in this clone's history (a shallow clone?)`, timeout: 900_000 }, async () => {
  const start = cliOf(prevDir, ['daemon', 'start', '--cpus', '0-1', '--mem-budget', '256M']);
  assert.equal(start.code, 0, start.out);
  h.track(h.ownerPid());
  assert.equal(cliOf(prevDir, ['vm', 'create', 'hb', '--guest', 'heartbeat', '--mem', '16M', '--start']).code, 0);
  await sleep(500);
  const up = cliOf(prevDir, ['swap', '--to', ROOT, '--json']);
  assert.equal(up.code, 0, up.out);
  assert.equal((JSON.parse(up.out.slice(up.out.indexOf('{'))) as { state: string }).state, 'done');
  h.track(h.ownerPid());
  await sleep(300);
  const down = cliOf(ROOT, ['swap', '--to', prevDir, '--json']);
  assert.equal(down.code, 0, down.out);
  assert.equal((JSON.parse(down.out.slice(down.out.indexOf('{'))) as { state: string }).state, 'done');
  h.track(h.ownerPid());
  assert.match(cliOf(prevDir, ['vm', 'ls']).out, /^hb\s+running/m);
  assertHeartbeatsContinuous((await h.http('GET', '/v1/vms/hb/console/log?tailBytes=1048576')).text);
  cliOf(prevDir, ['daemon', 'stop']);
});
