// Pinning the threads of this process with sched_setaffinity alone (no cgroup). Needs 2 online CPUs.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { currentTid } from '../../sys/affinity.js';
import { isOwnThread, listThreads, pinProcess, pinThreads, threadCpus, threadCpusFromProc, ThreadPinningError } from './thread-pinning.js';
import { distinctAffinities, wakeThreadPool } from './fixtures.js';

describe('thread pinning', () => {
  let original: number[] = [];
  before(async () => { original = threadCpus(0); await wakeThreadPool(); });
  after(() => { pinProcess(original); });

  it('lists this process\'s threads, main thread included', () => {
    const tids = listThreads();
    assert.ok(tids.includes(process.pid));
    assert.ok(tids.includes(currentTid()));
    assert.ok(tids.length > 1, 'V8 and libuv threads should be there');
    assert.ok(isOwnThread(process.pid));
    assert.ok(!isOwnThread(1));
  });

  it('pins every thread and new pool threads inherit it', async () => {
    const r = pinProcess([1]);
    assert.deepEqual(r.pinned, listThreads());
    assert.deepEqual(distinctAffinities(), ['1']);
    assert.deepEqual(threadCpus(0), [1]);
    pinProcess([0, 1]);
    assert.deepEqual(distinctAffinities(), ['0,1']);
    assert.deepEqual(threadCpusFromProc(process.pid), [0, 1]);
    await wakeThreadPool();
    assert.deepEqual(distinctAffinities(), ['0,1']);
  });

  it('reports threads that are gone instead of failing, and refuses bad sets', () => {
    const gone = 0x3fff_fff0; // above pid_max, so never a live tid
    const r = pinThreads([process.pid, gone], [0]);
    assert.deepEqual(r, { pinned: [process.pid], exited: [gone] });
    assert.throws(() => pinThreads([process.pid], []), ThreadPinningError);
    assert.throws(() => pinThreads([process.pid], [1000]), (e: unknown) => e instanceof ThreadPinningError && e.code === 'ERR_THREAD_PINNING' && /online/.test(e.message));
    pinProcess(original);
  });
});
