// The native addon against the real kernel: mmap/munmap of memfds, errno errors, SCM_RIGHTS fd
// passing, eventfd and CPU affinity. Every test also checks that it leaves no fd open.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  EFD_NONBLOCK, MADV_DONTNEED, MAP_SHARED, O_RDONLY, PROT_READ, PROT_WRITE, SOCK_NONBLOCK, SOCK_SEQPACKET,
  isNativeError, native,
} from './native.js';

const PAGE = 4096;
const BAD_FD = 1_000_000; // above any RLIMIT_NOFILE here, so never open

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** An `it` that fails if the body leaves more (or fewer) fds open than it found. */
function itNoLeak(name: string, body: () => void | Promise<void>): void {
  it(name, async () => {
    const before = openFdCount();
    await body();
    assert.equal(openFdCount(), before, 'open fds before and after the test');
  });
}

function isCloexec(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(flags, `no flags line in /proc/self/fdinfo/${fd}`);
  return (parseInt(flags[1]!, 8) & 0o2000000) !== 0;
}

function expectErrno(fn: () => unknown, syscall: string, code: string, errno: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isNativeError(e), `not a native error: ${String(e)}`);
    assert.equal(e.syscall, syscall);
    assert.equal(e.code, code);
    assert.equal(e.errno, errno);
    assert.match(e.message, new RegExp(`${syscall}.*${code}`));
    return true;
  });
}

function expectTypeError(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TypeError, `not a TypeError: ${String(e)}`);
    assert.ok(!isNativeError(e), 'a TypeError must not carry an errno');
    return true;
  });
}

function memfdOf(size: number): number {
  const fd = native().memfdCreate('swapvisor-native-test', 0);
  try {
    native().ftruncate(fd, size);
  } catch (e) {
    native().close(fd);
    throw e;
  }
  return fd;
}

const u64le = (n: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};

describe('native: memfd and mmap', () => {
  itNoLeak('two MAP_SHARED mappings of one memfd show the same bytes', () => {
    const n = native();
    const fd = memfdOf(4 * PAGE);
    try {
      const a = n.mmap(fd, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
      const b = n.mmap(fd, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
      const tail = n.mmap(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 3 * PAGE);
      try {
        assert.equal(a.buffer.byteLength, 4 * PAGE);
        assert.notEqual(a.address, b.address);
        assert.equal(a.address % BigInt(PAGE), 0n);
        const va = new Uint8Array(a.buffer);
        const vb = new Uint8Array(b.buffer);
        assert.ok(vb.every((x) => x === 0), 'a fresh memfd reads as zeros');
        for (let i = 0; i < va.length; i += 97) va[i] = (i * 7 + 1) & 0xff;
        for (let i = 0; i < va.length; i += 97) assert.equal(vb[i], (i * 7 + 1) & 0xff, `byte ${i}`);
        vb[3 * PAGE + 5] = 0xa5;
        assert.equal(va[3 * PAGE + 5], 0xa5);
        assert.equal(new Uint8Array(tail.buffer)[5], 0xa5, 'the offset argument selects the file page');
      } finally {
        n.munmap(a.buffer);
        n.munmap(b.buffer);
        n.munmap(tail.buffer);
      }
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('a mapping outlives the fd it came from', () => {
    const n = native();
    const fd = memfdOf(PAGE);
    const m = n.mmap(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
    n.close(fd);
    try {
      new Uint8Array(m.buffer).fill(0x5a);
      assert.equal(new Uint8Array(m.buffer)[PAGE - 1], 0x5a);
    } finally {
      n.munmap(m.buffer);
    }
  });

  itNoLeak('munmap detaches the ArrayBuffer, and a second munmap is harmless', () => {
    const n = native();
    const fd = memfdOf(2 * PAGE);
    try {
      const m = n.mmap(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
      const view = new Uint8Array(m.buffer, PAGE);
      view[0] = 1;
      n.munmap(m.buffer);
      assert.equal(m.buffer.byteLength, 0);
      assert.equal(view.length, 0);
      assert.equal(view[0], undefined, 'a view over an unmapped buffer reaches nothing');
      n.munmap(m.buffer);
      assert.equal(m.buffer.byteLength, 0);
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('munmap of a buffer that mmap did not create throws a TypeError, not a crash', () => {
    const n = native();
    expectTypeError(() => n.munmap(new ArrayBuffer(PAGE)));
    expectTypeError(() => n.munmap(new Uint8Array(PAGE).buffer));
    expectTypeError(() => n.munmap(42 as unknown as ArrayBuffer));
    const fd = memfdOf(PAGE);
    try {
      const m = n.mmap(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
      try {
        // A view over the mapping is not the mapping itself.
        expectTypeError(() => n.munmap(new Uint8Array(m.buffer) as unknown as ArrayBuffer));
        assert.equal(m.buffer.byteLength, PAGE);
      } finally {
        n.munmap(m.buffer);
      }
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('mmap errors carry errno: zero length, a bad fd, beyond 4 GiB', () => {
    const n = native();
    const fd = memfdOf(PAGE);
    try {
      expectErrno(() => n.mmap(fd, 0, PROT_READ, MAP_SHARED, 0), 'mmap', 'EINVAL', 22);
      expectErrno(() => n.mmap(fd, 4 * 1024 * 1024 * 1024 + PAGE, PROT_READ, MAP_SHARED, 0), 'mmap', 'EINVAL', 22);
      expectErrno(() => n.mmap(BAD_FD, PAGE, PROT_READ, MAP_SHARED, 0), 'mmap', 'EBADF', 9);
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('madvise checks its range and MADV_DONTNEED keeps memfd contents', () => {
    const n = native();
    const fd = memfdOf(2 * PAGE);
    try {
      const m = n.mmap(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
      try {
        const v = new Uint8Array(m.buffer);
        v[PAGE + 1] = 0x77;
        n.madvise(m.buffer, PAGE, PAGE, MADV_DONTNEED);
        assert.equal(v[PAGE + 1], 0x77, 'shared file pages survive MADV_DONTNEED');
        expectErrno(() => n.madvise(m.buffer, PAGE, PAGE + 1, MADV_DONTNEED), 'madvise', 'EINVAL', 22);
        expectErrno(() => n.madvise(m.buffer, -1, 1, MADV_DONTNEED), 'madvise', 'EINVAL', 22);
      } finally {
        n.munmap(m.buffer);
      }
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('memfd and eventfd fds are close-on-exec', () => {
    const n = native();
    const m = memfdOf(PAGE);
    const e = n.eventfd(0, 0);
    try {
      assert.ok(isCloexec(m));
      assert.ok(isCloexec(e));
    } finally {
      n.close(m);
      n.close(e);
    }
  });
});

describe('native: errors', () => {
  itNoLeak('errors carry .syscall, .errno and .code', () => {
    const n = native();
    expectErrno(() => n.open('/nonexistent/swapvisor', O_RDONLY), 'open', 'ENOENT', 2);
    expectErrno(() => n.ioctl(BAD_FD, 0xae00), 'ioctl', 'EBADF', 9);
    expectErrno(() => n.close(BAD_FD), 'close', 'EBADF', 9);
    expectErrno(() => n.read(BAD_FD, new Uint8Array(8)), 'read', 'EBADF', 9);
    expectErrno(() => n.ftruncate(BAD_FD, PAGE), 'ftruncate', 'EBADF', 9);
  });

  itNoLeak('an ioctl the file does not know fails with ENOTTY', () => {
    const n = native();
    const fd = memfdOf(PAGE);
    try {
      expectErrno(() => n.ioctl(fd, 0xae00), 'ioctl', 'ENOTTY', 25);
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('wrong argument types throw TypeErrors', () => {
    const n = native();
    expectTypeError(() => n.open(42 as unknown as string, O_RDONLY));
    expectTypeError(() => n.ioctl(0, 0xae00, 'x' as unknown as number));
    expectTypeError(() => n.ioctl(0, 0xae00, new Uint32Array(2) as unknown as Uint8Array));
    expectTypeError(() => n.read(0, [] as unknown as Uint8Array));
    expectTypeError(() => n.sendmsg(0, new Uint8Array(1), 3 as unknown as number[]));
    expectTypeError(() => n.schedSetaffinity(0, [-1]));
    expectTypeError(() => n.memfdCreate('x'.repeat(300), 0));
  });
});

describe('native: unix sockets and SCM_RIGHTS', () => {
  itNoLeak('a memfd sent with sendmsg arrives as a working fd', () => {
    const n = native();
    const [s0, s1] = n.socketpair(SOCK_SEQPACKET);
    const fd = memfdOf(PAGE);
    let received: number[] = [];
    try {
      const payload = new TextEncoder().encode('guest-ram');
      assert.equal(n.sendmsg(s0, payload, [fd]), payload.length);
      const buf = new Uint8Array(64);
      const r = n.recvmsg(s1, buf);
      received = r.fds;
      assert.equal(r.bytes, payload.length);
      assert.deepEqual(buf.subarray(0, r.bytes), payload);
      assert.equal(r.truncated, false);
      assert.equal(r.fds.length, 1);
      const got = r.fds[0]!;
      assert.notEqual(got, fd);
      assert.ok(isCloexec(got), 'received fds are close-on-exec');

      const text = new TextEncoder().encode('written through the sender');
      assert.equal(n.write(fd, text), text.length);
      const m = n.mmap(got, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
      try {
        const v = new Uint8Array(m.buffer);
        assert.deepEqual(v.subarray(0, text.length), text);
        v[100] = 0xee; // and back the other way
        const check = n.mmap(fd, PAGE, PROT_READ, MAP_SHARED, 0);
        try {
          assert.equal(new Uint8Array(check.buffer)[100], 0xee);
        } finally {
          n.munmap(check.buffer);
        }
      } finally {
        n.munmap(m.buffer);
      }
    } finally {
      for (const x of [s0, s1, fd, ...received]) n.close(x);
    }
  });

  itNoLeak('several fds travel in one message, in order', () => {
    const n = native();
    const [s0, s1] = n.socketpair(SOCK_SEQPACKET);
    const sent = [n.eventfd(1, 0), n.eventfd(2, 0), n.eventfd(3, 0)];
    let received: number[] = [];
    try {
      assert.equal(n.sendmsg(s0, new Uint8Array([9]), sent), 1);
      const r = n.recvmsg(s1, new Uint8Array(8));
      received = r.fds;
      assert.equal(r.fds.length, 3);
      // An eventfd reads back its counter: the order of the fds is kept.
      r.fds.forEach((f, i) => {
        const b = new Uint8Array(8);
        assert.equal(n.read(f, b), 8);
        assert.equal(new DataView(b.buffer).getBigUint64(0, true), BigInt(i + 1));
      });
    } finally {
      for (const x of [s0, s1, ...sent, ...received]) n.close(x);
    }
  });

  itNoLeak('recvmsg on an empty nonblocking socket returns bytes -1', () => {
    const n = native();
    const [s0, s1] = n.socketpair(SOCK_SEQPACKET | SOCK_NONBLOCK);
    try {
      const r = n.recvmsg(s1, new Uint8Array(16));
      assert.deepEqual(r, { bytes: -1, fds: [], truncated: false });
    } finally {
      n.close(s0);
      n.close(s1);
    }
  });

  itNoLeak('a message longer than the buffer is reported as truncated', () => {
    const n = native();
    const [s0, s1] = n.socketpair(SOCK_SEQPACKET);
    try {
      n.sendmsg(s0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), []);
      const buf = new Uint8Array(4);
      const r = n.recvmsg(s1, buf);
      assert.equal(r.bytes, 4);
      assert.equal(r.truncated, true);
      assert.deepEqual(buf, new Uint8Array([1, 2, 3, 4]));
    } finally {
      n.close(s0);
      n.close(s1);
    }
  });

  itNoLeak('recvmsg sees end of stream as 0 bytes once the peer is closed', () => {
    const n = native();
    const [s0, s1] = n.socketpair(SOCK_SEQPACKET);
    try {
      n.close(s0);
      assert.equal(n.recvmsg(s1, new Uint8Array(4)).bytes, 0);
    } finally {
      n.close(s1);
    }
  });

  itNoLeak('sendmsg to a closed peer fails with EPIPE (no SIGPIPE)', () => {
    const n = native();
    const [s0, s1] = n.socketpair(SOCK_SEQPACKET);
    try {
      n.close(s1);
      expectErrno(() => n.sendmsg(s0, new Uint8Array([1]), []), 'sendmsg', 'EPIPE', 32);
    } finally {
      n.close(s0);
    }
  });
});

describe('native: eventfd', () => {
  itNoLeak('writes add to the counter and a read returns and clears it', () => {
    const n = native();
    const fd = n.eventfd(0, EFD_NONBLOCK);
    try {
      const b = new Uint8Array(8);
      assert.equal(n.read(fd, b), -1, 'an empty nonblocking eventfd reads as -1 (EAGAIN)');
      assert.equal(n.write(fd, u64le(3n)), 8);
      assert.equal(n.write(fd, u64le(4n)), 8);
      assert.equal(n.read(fd, b), 8);
      assert.equal(new DataView(b.buffer).getBigUint64(0, true), 7n);
      assert.equal(n.read(fd, b), -1);
      expectErrno(() => n.read(fd, new Uint8Array(4)), 'read', 'EINVAL', 22);
    } finally {
      n.close(fd);
    }
  });

  itNoLeak('the initial value is readable', () => {
    const n = native();
    const fd = n.eventfd(5, EFD_NONBLOCK);
    try {
      const b = new Uint8Array(8);
      assert.equal(n.read(fd, b), 8);
      assert.equal(new DataView(b.buffer).getBigUint64(0, true), 5n);
    } finally {
      n.close(fd);
    }
  });
});

describe('native: affinity and thread ids', () => {
  itNoLeak('gettid on the main thread is the pid', () => {
    assert.equal(native().gettid(), process.pid);
  });

  itNoLeak('schedSetaffinity/schedGetaffinity on the current thread', () => {
    const n = native();
    const original = n.schedGetaffinity(0);
    assert.ok(original.length >= 1);
    assert.deepEqual([...original].sort((a, b) => a - b), original, 'cpus come back sorted');
    assert.deepEqual(n.schedGetaffinity(n.gettid()), original, 'tid 0 is the calling thread');
    try {
      const only = original[original.length - 1]!;
      n.schedSetaffinity(0, [only]);
      assert.deepEqual(n.schedGetaffinity(0), [only]);
      n.schedSetaffinity(n.gettid(), original);
      assert.deepEqual(n.schedGetaffinity(0), original);
      expectErrno(() => n.schedSetaffinity(0, []), 'sched_setaffinity', 'EINVAL', 22);
    } finally {
      n.schedSetaffinity(0, original);
    }
    assert.deepEqual(n.schedGetaffinity(0), original);
  });

  itNoLeak('schedGetaffinity of a thread that does not exist fails with ESRCH', () => {
    expectErrno(() => native().schedGetaffinity(0x3fff_fff0), 'sched_getaffinity', 'ESRCH', 3);
  });
});
