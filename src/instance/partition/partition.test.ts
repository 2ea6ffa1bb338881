// Partition against the real host (as root, 2 online CPUs): claim CPU {0}, grow, shrink, destroy,
// the sched_setaffinity-only fallback, and a running heartbeat VM whose vCPU thread follows the
// partition while the guest keeps printing. Every test destroys its partition in `finally`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { getAffinity } from '../../sys/affinity.js';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Machine } from '../../vmm/machine.js';
import { CPUSET_ROOT } from './cpuset-cgroup.js';
import { BudgetExceededError } from './memory-budget.js';
import { Partition, PartitionError } from './partition.js';
import { listThreads, pinProcess, threadCpus, threadCpusFromProc } from './thread-pinning.js';
import { CPUSET_MOUNTED, cpusetPath, distinctAffinities, uniqueName, wakeThreadPool } from './fixtures.js';

const HEARTBEAT = new URL('../../../../guest/build/heartbeat.elf', import.meta.url);

function procsOf(name: string): number[] {
  return readFileSync(`${CPUSET_ROOT}/swapvisor/${name}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
}

function partitionErr(code: string, pattern?: RegExp) {
  return (e: unknown) => e instanceof PartitionError && e.code === code && (!pattern || pattern.test(e.message));
}

describe('Partition', () => {
  let original: number[] = [];
  before(async () => { original = threadCpus(0); await wakeThreadPool(); });
  after(() => { pinProcess(original); });

  it('claims CPU {0} with a cpuset, grows to {0,1}, shrinks to {1}, and gives everything back', { skip: !CPUSET_MOUNTED }, async () => {
    const name = uniqueName('p');
    const p = Partition.create({ name, cpus: [0], memBudgetMib: 1024, useCgroup: 'required' });
    try {
      assert.deepEqual(distinctAffinities(), ['0'], 'every thread of this process runs on CPU 0');
      assert.ok(procsOf(name).includes(process.pid));
      assert.equal(cpusetPath(), `/swapvisor/${name}`);
      const info = p.info();
      assert.deepEqual(info.cgroup, { path: `${CPUSET_ROOT}/swapvisor/${name}` });
      assert.deepEqual(info.cpus, [0]);
      assert.ok(info.pinnedThreads.includes(process.pid) && info.pinnedThreads.length > 1, 'main thread and helpers pinned');
      assert.ok(info.pinnedThreads.every((tid) => listThreads().includes(tid)));
      await wakeThreadPool();
      assert.deepEqual(distinctAffinities(), ['0'], 'threads started later inherit the partition');

      p.grow([0, 1]);
      assert.deepEqual(distinctAffinities(), ['0,1']);
      assert.equal(readFileSync(`${CPUSET_ROOT}/swapvisor/${name}/cpuset.cpus`, 'utf8').trim(), '0-1');
      p.shrink('1');
      assert.deepEqual(distinctAffinities(), ['1']);
      assert.equal(readFileSync(`${CPUSET_ROOT}/swapvisor/${name}/cpuset.cpus`, 'utf8').trim(), '1');

      assert.throws(() => p.grow([0]), partitionErr('ERR_PARTITION_CPUS', /drops some/));
      assert.throws(() => p.shrink([0]), partitionErr('ERR_PARTITION_CPUS', /not a subset/));
      assert.throws(() => p.shrink([]), partitionErr('ERR_PARTITION_CPUS', /at least one CPU/));
      assert.throws(() => p.grow([1, 1000]), partitionErr('ERR_PARTITION_CPUS', /CPU 1000 is not online/));
      assert.deepEqual(distinctAffinities(), ['1'], 'refused changes change nothing');

      p.budget.reserve('vm-a', 700);
      assert.throws(() => p.budget.reserve('vm-b', 512), BudgetExceededError);
      assert.equal(p.info().memUsedMib, 700);
      assert.equal(p.info().memBudgetMib, 1024);
    } finally {
      await p.destroy();
    }
    assert.ok(!existsSync(`${CPUSET_ROOT}/swapvisor/${name}`), 'the cgroup directory is gone');
    assert.equal(cpusetPath(), '/', 'back in the root cpuset');
    assert.deepEqual(distinctAffinities(), [original.join(',')]);
    await p.destroy(); // idempotent
    assert.throws(() => p.grow([0, 1]), partitionErr('ERR_PARTITION_DESTROYED'));
    assert.deepEqual(p.info().cgroup, { absent: 'the partition was destroyed' });
  });

  it('works with sched_setaffinity alone when told not to use a cgroup, and says so', async () => {
    const p = Partition.create({ name: uniqueName('nocg'), cpus: '1', memBudgetMib: 64, useCgroup: 'off' });
    try {
      const info = p.info();
      assert.ok('absent' in info.cgroup && /sched_setaffinity only/.test(info.cgroup.absent));
      assert.equal(cpusetPath(), '/');
      assert.deepEqual(distinctAffinities(), ['1']);
      p.grow('0-1');
      assert.deepEqual(distinctAffinities(), ['0,1']);
      p.shrink([0]);
      assert.deepEqual(distinctAffinities(), ['0']);
    } finally {
      await p.destroy();
    }
    assert.deepEqual(distinctAffinities(), [original.join(',')]);
  });

  it('refuses CPUs that do not exist or are not online, and bad names, before taking anything', () => {
    assert.throws(() => Partition.create({ name: uniqueName('bad'), cpus: [9999], memBudgetMib: 64 }), partitionErr('ERR_PARTITION_CPUS', /9999 is not online on this host \(online: 0-1\)/));
    assert.throws(() => Partition.create({ name: uniqueName('bad'), cpus: '0-1,1000', memBudgetMib: 64 }), partitionErr('ERR_PARTITION_CPUS', /1000 is not online/));
    assert.throws(() => Partition.create({ name: uniqueName('bad'), cpus: 'x', memBudgetMib: 64 }), partitionErr('ERR_PARTITION_CPUS'));
    assert.throws(() => Partition.create({ name: uniqueName('bad'), cpus: [], memBudgetMib: 64 }), partitionErr('ERR_PARTITION_CPUS', /at least one CPU/));
    assert.throws(() => Partition.create({ name: 'a/b', cpus: [0], memBudgetMib: 64 }), partitionErr('ERR_PARTITION_NAME'));
    assert.equal(cpusetPath(), '/', 'a refused partition takes nothing');
  });

  it('reads online CPUs from the file it is given', async () => {
    const fake = `/tmp/swapvisor-online-${process.pid}`;
    writeFileSync(fake, '0\n');
    assert.throws(() => Partition.create({ name: uniqueName('off'), cpus: [1], memBudgetMib: 64, useCgroup: 'off', onlineCpusPath: fake }), partitionErr('ERR_PARTITION_CPUS', /CPU 1 is not online on this host \(online: 0\)/));
    const p = Partition.create({ name: uniqueName('off'), cpus: [0], memBudgetMib: 64, useCgroup: 'off', onlineCpusPath: fake });
    try {
      assert.throws(() => p.grow([0, 1]), partitionErr('ERR_PARTITION_CPUS', /CPU 1 is not online/));
    } finally {
      await p.destroy();
      rmSync(fake, { force: true });
    }
  });

  it('moves a running heartbeat VM\'s vCPU thread on shrink and grow while the guest keeps running', { skip: !existsSync(HEARTBEAT) || !existsSync('/dev/kvm') }, async () => {
    let output = '';
    const decoder = new TextDecoder();
    const kernel = readFileSync(HEARTBEAT);
    const p = Partition.create({ name: uniqueName('vm'), cpus: [0, 1], memBudgetMib: 256 });
    let m: Machine | undefined;
    const seqs = (): number[] => [...output.matchAll(/^hb (\d+) /gm)].map((x) => Number(x[1]));
    const lastSeq = (): number => seqs().at(-1) ?? -1;
    const advances = async (what: string): Promise<void> => {
      const from = lastSeq();
      const deadline = Date.now() + 5000;
      while (lastSeq() < from + 20) {
        assert.ok(Date.now() < deadline, `guest stopped printing heartbeats ${what} (last hb ${from}); output tail: ${output.slice(-200)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      p.budget.reserve('p', 16);
      m = Machine.create({ name: 'p', kernel, cmdline: 'period_us=1000', memSizeMib: 16, vcpus: 1 }, { write(b) { output += decoder.decode(b, { stream: true }); } });
      m.start();
      const tid = m.vcpus[0]!.tid;
      p.adoptThreads([tid]);
      assert.ok(p.info().pinnedThreads.includes(tid));
      await advances('after start');

      // The swap: A shrinks to {0}, later grows again; and the other way round.
      for (const [step, cpus] of [['shrink', [0]], ['grow', [0, 1]], ['shrink', [1]], ['grow', [0, 1]]] as const) {
        if (step === 'shrink') p.shrink(cpus); else p.grow(cpus);
        assert.deepEqual(threadCpus(tid), [...cpus], `vCPU thread after ${step} to ${cpus.join(',')}`);
        assert.deepEqual(threadCpusFromProc(tid), [...cpus]);
        assert.deepEqual(distinctAffinities(), [cpus.join(',')], 'every other thread follows too');
        await advances(`after ${step} to {${cpus.join(',')}}`);
      }
      const s = seqs();
      assert.ok(s.length > 80);
      for (let i = 1; i < s.length; i++) assert.equal(s[i], s[i - 1]! + 1, `heartbeat ${s[i - 1]} was followed by ${s[i]}`);
      assert.equal(m.state, 'running');
    } finally {
      if (m) {
        const exit = await m.stop();
        assert.equal(exit.reason, 'stopped');
      }
      p.budget.release('p');
      await p.destroy();
    }
  });

  it('placeOutside moves a process it started out of its cpuset onto other CPUs, and the partition stays as it was', { skip: !CPUSET_MOUNTED }, async () => {
    const name = uniqueName('place');
    const p = Partition.create({ name, cpus: [0], memBudgetMib: 64, useCgroup: 'required' });
    const child = spawn('sleep', ['5'], { stdio: 'ignore' });
    try {
      assert.ok(child.pid !== undefined);
      assert.ok(procsOf(name).includes(child.pid!), 'a child starts in the partition\'s cpuset');
      await p.placeOutside(child.pid!, [1]);
      assert.deepEqual(getAffinity(child.pid!), [1], 'then runs on CPU 1');
      assert.ok(!procsOf(name).includes(child.pid!), 'outside the partition\'s cpuset');
      assert.ok(procsOf(name).includes(process.pid));
      assert.deepEqual(distinctAffinities(), ['0'], 'this process stays on CPU 0');
    } finally {
      child.kill('SIGKILL');
      await p.destroy();
    }
  });

  it('a partition made from inside swapvisor\'s shared parent (where a swap puts B) hands the process back to the root', { skip: !CPUSET_MOUNTED }, async () => {
    const holder = Partition.create({ name: uniqueName('holder'), cpus: [0, 1], memBudgetMib: 64, useCgroup: 'required' });
    try {
      // What A does to B: into the shared parent, before B makes its own partition.
      writeFileSync(`${CPUSET_ROOT}/swapvisor/cgroup.procs`, `${process.pid}\n`);
      assert.equal(cpusetPath(), '/swapvisor');
      const p = Partition.create({ name: uniqueName('b'), cpus: [1], memBudgetMib: 64, useCgroup: 'required' });
      await p.destroy();
      assert.equal(cpusetPath(), '/', 'not back into the shared parent, which could then never be removed');
    } finally {
      await holder.destroy();
    }
  });

  it('a retiring instance gives its cpuset up but keeps its threads on its CPUs (stayPinned)', { skip: !CPUSET_MOUNTED }, async () => {
    const name = uniqueName('retiring');
    const p = Partition.create({ name, cpus: [1], memBudgetMib: 64, useCgroup: 'required' });
    try {
      await p.destroy({ stayPinned: true });
      assert.equal(cpusetPath(), '/', 'out of its cpuset, which is gone');
      assert.equal(existsSync(`${CPUSET_ROOT}/swapvisor/${name}`), false);
      assert.deepEqual(distinctAffinities(), ['1'], 'every thread still on CPU 1, not on all CPUs of the root cpuset');
    } finally {
      await p.destroy();
      pinProcess(original);
    }
  });
});
