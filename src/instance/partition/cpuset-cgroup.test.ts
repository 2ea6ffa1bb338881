// The cgroup v1 cpuset against the real kernel (as root): create, attach, change CPUs, destroy.
// Every test removes its cgroup in `finally`, so a failure leaves nothing behind.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CgroupError, CPUSET_ROOT, CpusetCgroup, cpusetAvailable, cpusetOfProcess } from './cpuset-cgroup.js';
import { pinProcess, threadCpus } from './thread-pinning.js';
import { CPUSET_MOUNTED, cpusetPath, distinctAffinities, uniqueName, wakeThreadPool } from './fixtures.js';

describe('CpusetCgroup', { skip: CPUSET_MOUNTED ? false : 'no cgroup v1 cpuset on this host' }, () => {
  let original: number[] = [];
  before(async () => { original = threadCpus(0); await wakeThreadPool(); });
  after(() => { pinProcess(original); });

  it('is available here, and not on a path that is no cpuset mount', () => {
    assert.deepEqual(cpusetAvailable(), { ok: true });
    const r = cpusetAvailable('/tmp');
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /no cgroup v1 hierarchy is mounted at \/tmp/);
    assert.throws(() => CpusetCgroup.create('x', { cpus: [0], root: '/tmp' }), (e: unknown) => e instanceof CgroupError && e.code === 'ERR_CGROUP_UNAVAILABLE');
  });

  it('creates swapvisor/<name> with a usable parent, attaches the process, changes CPUs, and cleans up', async () => {
    const name = uniqueName('cg');
    const cg = CpusetCgroup.create(name, { cpus: [0] });
    try {
      assert.equal(cg.path, `${CPUSET_ROOT}/swapvisor/${name}`);
      assert.equal(readFileSync(`${CPUSET_ROOT}/swapvisor/cpuset.mems`, 'utf8').trim(), readFileSync(`${CPUSET_ROOT}/cpuset.mems`, 'utf8').trim());
      assert.ok(readFileSync(`${CPUSET_ROOT}/swapvisor/cpuset.cpus`, 'utf8').trim() !== '', 'the parent has CPUs');
      assert.deepEqual(cg.cpus(), [0]);
      assert.deepEqual(cg.procs(), []);
      cg.attachProcess(process.pid);
      assert.deepEqual(cg.procs(), [process.pid]);
      assert.equal(cpusetPath(), `/swapvisor/${name}`);
      assert.deepEqual(distinctAffinities(), ['0'], 'attaching resets every thread to the cpuset');
      cg.setCpus([0, 1]);
      assert.deepEqual(cg.cpus(), [0, 1]);
      assert.deepEqual(distinctAffinities(), ['0,1'], 'a v1 cpuset rewrites affinity on grow too');
      cg.setCpus([1]);
      assert.deepEqual(distinctAffinities(), ['1']);
      assert.throws(() => cg.setCpus([]), CgroupError);
      assert.throws(() => cg.setCpus([1000]), (e: unknown) => e instanceof CgroupError && /root cpuset/.test(e.message));
    } finally {
      await cg.destroy();
    }
    assert.ok(!existsSync(cg.path), 'the cgroup directory is gone');
    assert.ok(!existsSync(`${CPUSET_ROOT}/swapvisor`), 'the last instance out removes the shared parent too');
    assert.equal(cpusetPath(), '/');
    assert.deepEqual(distinctAffinities(), ['0,1'], 'back in the root cpuset, the kernel widened affinity again');
    await cg.destroy(); // idempotent
    assert.throws(() => cg.setCpus([0]), (e: unknown) => e instanceof CgroupError && e.code === 'ERR_CGROUP_DESTROYED');
  });

  it('destroy moves every process out, including a child, before removing the directory', async () => {
    const cg = CpusetCgroup.create(uniqueName('child'), { cpus: [1] });
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      cg.attachProcess(child.pid!);
      assert.deepEqual(cg.procs(), [child.pid]);
      assert.match(readFileSync(`/proc/${child.pid}/status`, 'utf8'), /^Cpus_allowed_list:\s*1$/m);
    } finally {
      await cg.destroy();
    }
    try {
      assert.ok(!existsSync(cg.path));
      assert.equal(cpusetOfProcess(child.pid!), '/');
    } finally {
      child.kill();
    }
  });

  it('reuses an empty leftover cgroup and refuses an occupied one', async () => {
    const name = uniqueName('dup');
    const first = CpusetCgroup.create(name, { cpus: [0] });
    try {
      const again = CpusetCgroup.create(name, { cpus: [1] });
      assert.equal(again.path, first.path);
      first.attachProcess(process.pid);
      assert.throws(() => CpusetCgroup.create(name, { cpus: [0] }), (e: unknown) => e instanceof CgroupError && e.code === 'ERR_CGROUP_BUSY');
    } finally {
      await first.destroy();
    }
    assert.ok(!existsSync(first.path));
  });

  it('rejects bad names before touching the filesystem', () => {
    for (const bad of ['', '../x', 'a/b', 'x'.repeat(65)]) {
      assert.throws(() => CpusetCgroup.create(bad, { cpus: [0] }), (e: unknown) => e instanceof CgroupError && e.code === 'ERR_CGROUP_NAME');
    }
  });
});
