// Kvm, VmFd, VcpuFd and VcpuThread against /dev/kvm: system queries, a tiny real-mode guest
// that does port I/O and halts, and the kick protocol (immediate_exit + signal).

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { GeneralRegisters } from '../arch/x86_64/cpu-state.js';
import { GP_REGISTER_NAMES } from '../arch/x86_64/cpu-state.js';
import * as abi from './kvm-abi.js';
import { Kvm, KvmUnavailableError, type VcpuFd, type VmFd } from './kvm.js';
import { Memfd, type MemfdMapping } from './memfd.js';
import { EINTR, VcpuThread } from './vcpu-thread.js';

const RAM_SIZE = 0x10000;
const CODE_GPA = 0x1000;
const OUT_PORT = 0x10;

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function itNoLeak(name: string, body: () => void | Promise<void>): void {
  it(name, async () => {
    const before = openFdCount();
    await body();
    assert.equal(openFdCount(), before, 'open fds before and after the test');
  });
}

/** Collects VcpuThread results; next() waits for one with a deadline. */
class ExitQueue {
  private readonly results: number[] = [];
  private waiter: ((r: number) => void) | undefined;

  readonly onExit = (r: number): void => {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(r);
    } else {
      this.results.push(r);
    }
  };

  get pending(): number { return this.results.length; }

  next(timeoutMs: number): Promise<number> {
    const r = this.results.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no KVM_RUN result within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (x) => {
        clearTimeout(t);
        resolve(x);
      };
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Guest {
  kvm: Kvm;
  vm: VmFd;
  memfd: Memfd;
  ram: MemfdMapping;
  vcpu: VcpuFd;
  run: DataView;
}

/**
 * A VM with RAM_SIZE bytes at GPA 0 (one memfd memslot) and one vCPU in real mode at
 * CS:IP 0:CODE_GPA, with `code` written there. The body runs, then every fd is closed.
 */
async function withGuest(code: readonly number[], body: (g: Guest) => Promise<void>): Promise<void> {
  const kvm = Kvm.open();
  try {
    const vm = kvm.createVm();
    try {
      const memfd = Memfd.create('swapvisor-kvm-test', RAM_SIZE);
      try {
        const ram = memfd.map(0, RAM_SIZE, { populate: true });
        vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0, memorySize: RAM_SIZE, userspaceAddr: ram.address });
        new Uint8Array(ram.buffer).set(code, CODE_GPA);
        const vcpu = vm.createVcpu(0);
        try {
          const sregs = vcpu.getSregs();
          sregs.cs = { ...sregs.cs, base: 0n, selector: 0 };
          vcpu.setSregs(sregs);
          const regs = Object.fromEntries(GP_REGISTER_NAMES.map((n) => [n, 0n])) as GeneralRegisters;
          vcpu.setRegs({ ...regs, rip: BigInt(CODE_GPA), rflags: 0x2n });
          const run = new DataView(vcpu.run.buffer, vcpu.run.byteOffset, vcpu.run.byteLength);
          await body({ kvm, vm, memfd, ram, vcpu, run });
        } finally {
          vcpu.close();
        }
      } finally {
        await memfd.close();
      }
    } finally {
      vm.close();
    }
  } finally {
    kvm.close();
  }
}

// mov al, 0x42 ; out 0x10, al ; hlt
const OUT_THEN_HLT = [0xb0, 0x42, 0xe6, OUT_PORT, 0xf4];
// jmp $
const SPIN = [0xeb, 0xfe];

describe('Kvm (system fd)', () => {
  itNoLeak('opens /dev/kvm and answers system queries', () => {
    const kvm = Kvm.open();
    try {
      assert.equal(kvm.getApiVersion(), 12);
      assert.equal(kvm.getApiVersion(), abi.KVM_API_VERSION);
      assert.ok(kvm.checkExtension(abi.KVM_CAP_USER_MEMORY) > 0);
      assert.ok(kvm.checkExtension(abi.KVM_CAP_IMMEDIATE_EXIT) > 0, 'the kick protocol relies on immediate_exit');
      assert.equal(kvm.checkExtension(0x7fff_0000), 0, 'an unknown capability is 0, not an error');
      const mmapSize = kvm.getVcpuMmapSize();
      assert.ok(mmapSize >= 4096 && mmapSize % 4096 === 0, `vCPU mmap size ${mmapSize}`);
    } finally {
      kvm.close();
    }
  });

  itNoLeak('getSupportedCpuid returns leaves 0 and 1 with a sane maximum leaf', () => {
    const kvm = Kvm.open();
    try {
      const cpuid = kvm.getSupportedCpuid();
      assert.ok(cpuid.length >= 2);
      const leaf0 = cpuid.find((e) => e.function === 0);
      const leaf1 = cpuid.find((e) => e.function === 1);
      assert.ok(leaf0 && leaf1, 'leaves 0 and 1');
      assert.ok(leaf0.eax >= 1, 'leaf 0 reports at least one standard leaf');
      for (const e of cpuid) {
        if (e.function < 0x4000_0000) assert.ok(e.function <= leaf0.eax, `leaf 0x${e.function.toString(16)} beyond max 0x${leaf0.eax.toString(16)}`);
      }
      // The vendor string is printable ASCII in ebx, edx, ecx.
      const vendor = Buffer.alloc(12);
      vendor.writeUInt32LE(leaf0.ebx, 0);
      vendor.writeUInt32LE(leaf0.edx, 4);
      vendor.writeUInt32LE(leaf0.ecx, 8);
      assert.match(vendor.toString('latin1'), /^[\x20-\x7e]{12}$/);
    } finally {
      kvm.close();
    }
  });

  itNoLeak('getMsrIndexList is non-empty and lists the TSC MSR', () => {
    const kvm = Kvm.open();
    try {
      const msrs = kvm.getMsrIndexList();
      assert.ok(msrs.length > 0);
      assert.ok(msrs.includes(0x10), 'MSR_IA32_TSC');
      assert.equal(new Set(msrs).size, msrs.length, 'no duplicates');
    } finally {
      kvm.close();
    }
  });

  itNoLeak('open of a missing device throws KvmUnavailableError with the errno as cause', () => {
    assert.throws(() => Kvm.open('/nonexistent/kvm'), (e: unknown) => {
      assert.ok(e instanceof KvmUnavailableError);
      assert.equal(e.code, 'ERR_KVM_UNAVAILABLE');
      assert.match(e.message, /ENOENT/);
      assert.equal((e.cause as { code?: string }).code, 'ENOENT');
      return true;
    });
  });
});

describe('VmFd and VcpuFd', () => {
  itNoLeak('registers and special registers round-trip through KVM', async () => {
    await withGuest(OUT_THEN_HLT, async ({ vcpu }) => {
      const regs = Object.fromEntries(GP_REGISTER_NAMES.map((n, i) => [n, 0x0101_0101_0000_0000n * BigInt(i + 1) + BigInt(i)])) as GeneralRegisters;
      regs.rflags = 0x202n;
      vcpu.setRegs(regs);
      assert.deepEqual(vcpu.getRegs(), regs);
      assert.equal(new DataView(vcpu.getRegsBytes().buffer).getBigUint64(abi.SIZEOF_KVM_REGS - 16, true), regs.rip, 'rip is the 17th u64');

      const s = vcpu.getSregs();
      assert.equal(s.cs.base, 0n);
      assert.equal(s.cs.selector, 0);
      s.ds = { ...s.ds, base: 0x2000n, selector: 0x200 };
      s.gdt = { base: 0x5000n, limit: 0x27 };
      vcpu.setSregs(s);
      const back = vcpu.getSregs();
      assert.equal(back.ds.base, 0x2000n);
      assert.equal(back.ds.selector, 0x200);
      assert.deepEqual(back.gdt, { base: 0x5000n, limit: 0x27 });
    });
  });

  itNoLeak('MSRs, MP state and CPUID can be set and read back', async () => {
    await withGuest(OUT_THEN_HLT, async ({ kvm, vcpu }) => {
      vcpu.setCpuid2(kvm.getSupportedCpuid());
      const SYSENTER_CS = 0x174;
      assert.equal(vcpu.setMsrs([{ index: SYSENTER_CS, data: 0x10n }]), 1);
      assert.deepEqual(vcpu.getMsrs([SYSENTER_CS]), [{ index: SYSENTER_CS, data: 0x10n }]);
      assert.equal(vcpu.getMpState(), abi.KVM_MP_STATE_RUNNABLE);
      assert.equal(vcpu.getFpu().byteLength, abi.SIZEOF_KVM_FPU);
    });
  });

  itNoLeak('a second memslot overlapping the first is refused with EEXIST', async () => {
    await withGuest(OUT_THEN_HLT, async ({ vm, ram }) => {
      assert.throws(
        () => vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: 0x1000, memorySize: 0x1000, userspaceAddr: ram.address }),
        (e: unknown) => (e as { code?: string }).code === 'EEXIST',
      );
    });
  });

  itNoLeak('close twice is harmless and later use throws', async () => {
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    vcpu.close();
    vcpu.close();
    vm.close();
    vm.close();
    kvm.close();
    kvm.close();
    assert.throws(() => vcpu.getRegs(), /after close/);
    assert.throws(() => kvm.getApiVersion(), /after close/);
  });
});

describe('VcpuThread', () => {
  itNoLeak('a real-mode guest exits with KVM_EXIT_IO carrying port 0x10 and data 0x42, then halts', async () => {
    await withGuest(OUT_THEN_HLT, async ({ vcpu, run }) => {
      const exits = new ExitQueue();
      const thread = new VcpuThread(vcpu.fd, exits.onExit);
      try {
        thread.run();
        assert.equal(await exits.next(5000), 0);
        assert.equal(run.getUint32(abi.KVM_RUN_EXIT_REASON, true), abi.KVM_EXIT_IO);
        const d = abi.KVM_RUN_EXIT_DATA;
        assert.equal(run.getUint8(d), abi.KVM_EXIT_IO_OUT, 'direction');
        assert.equal(run.getUint8(d + 1), 1, 'size');
        assert.equal(run.getUint16(d + 2, true), OUT_PORT, 'port');
        assert.equal(run.getUint32(d + 4, true), 1, 'count');
        const dataOffset = Number(run.getBigUint64(d + 8, true));
        assert.ok(dataOffset > 0 && dataOffset < vcpu.run.byteLength, `data_offset ${dataOffset} inside the kvm_run mapping`);
        assert.equal(vcpu.run[dataOffset], 0x42);

        thread.run();
        assert.equal(await exits.next(5000), 0);
        assert.equal(run.getUint32(abi.KVM_RUN_EXIT_REASON, true), abi.KVM_EXIT_HLT);
        assert.equal(vcpu.getRegs().rip, BigInt(CODE_GPA + OUT_THEN_HLT.length), 'rip after hlt');
        assert.equal(vcpu.getRegs().rax & 0xffn, 0x42n);
      } finally {
        thread.destroy();
      }
    });
  });

  itNoLeak('tid is a positive thread id other than the main thread, and destroy twice is harmless', async () => {
    await withGuest(SPIN, async ({ vcpu }) => {
      const thread = new VcpuThread(vcpu.fd, () => {});
      try {
        const tid = thread.tid;
        assert.ok(Number.isInteger(tid) && tid > 0);
        assert.notEqual(tid, process.pid);
        assert.equal(thread.tid, tid, 'stable');
        assert.ok(readdirSync(`/proc/self/task`).includes(String(tid)), 'a thread of this process');
      } finally {
        thread.destroy();
      }
      thread.destroy();
      assert.throws(() => thread.run(), /after destroy/);
      assert.throws(() => thread.kick(), /after destroy/);
      assert.throws(() => thread.tid, /after destroy/);
    });
  });

  itNoLeak('immediate_exit plus kick gets a spinning guest out of KVM_RUN with -EINTR within 1 s', async () => {
    await withGuest(SPIN, async ({ vcpu, run }) => {
      const exits = new ExitQueue();
      const thread = new VcpuThread(vcpu.fd, exits.onExit);
      try {
        run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, 0);
        thread.run();
        await sleep(50);
        assert.equal(exits.pending, 0, 'the guest spins: no exit yet');
        run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, 1);
        const t0 = performance.now();
        thread.kick();
        assert.equal(await exits.next(1000), -EINTR);
        assert.ok(performance.now() - t0 < 1000);
        // With immediate_exit still set, the next KVM_RUN returns at once without a kick.
        thread.run();
        assert.equal(await exits.next(1000), -EINTR);
      } finally {
        thread.destroy();
      }
    });
  });

  itNoLeak('a kick while idle makes only the next KVM_RUN return -EINTR', async () => {
    await withGuest(SPIN, async ({ vcpu, run }) => {
      const exits = new ExitQueue();
      const thread = new VcpuThread(vcpu.fd, exits.onExit);
      try {
        run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, 0);
        thread.kick();
        thread.run();
        assert.equal(await exits.next(1000), -EINTR, 'the pending kick ends the next run');
        // The kick was consumed: the following run spins until kicked again.
        thread.run();
        await sleep(100);
        assert.equal(exits.pending, 0, 'a consumed kick must not end a later run');
        run.setUint8(abi.KVM_RUN_IMMEDIATE_EXIT, 1);
        thread.kick();
        assert.equal(await exits.next(1000), -EINTR);
      } finally {
        thread.destroy();
      }
    });
  });

  itNoLeak('destroy of a thread inside KVM_RUN returns promptly', async () => {
    await withGuest(SPIN, async ({ vcpu }) => {
      const thread = new VcpuThread(vcpu.fd, () => {});
      thread.run();
      await sleep(20);
      const t0 = performance.now();
      thread.destroy();
      assert.ok(performance.now() - t0 < 1000, 'destroy joined the thread within 1 s');
    });
  });

  itNoLeak('creating a thread for a non-vCPU fd fails with an errno, not a crash', async () => {
    const m = Memfd.create('swapvisor-kvm-test-not-a-vcpu', 4096);
    try {
      assert.throws(() => new VcpuThread(m.fd, () => {}), (e: unknown) => (e as { syscall?: string }).syscall === 'KVM_SET_SIGNAL_MASK');
    } finally {
      await m.close();
    }
  });
});
