// SeqpacketSocket against the real kernel: a connected pair, whole packets in order, file
// descriptors over SCM_RIGHTS, the size limit on both sides, and a peer close reported exactly
// once. Every test also checks that it leaves no fd open.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { EFD_NONBLOCK, SOCK_SEQPACKET, native } from './native.js';
import { type Packet, SEQPACKET_MAX_BYTES, SeqpacketError, SeqpacketSocket } from './seqpacket.js';

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** An `it` that fails if the body leaves more (or fewer) fds open than it found. */
function itNoLeak(name: string, body: () => Promise<void>, opts: { todo?: string } = {}): void {
  it(name, opts, async () => {
    const before = openFdCount();
    await body();
    // libuv closes poll handles on the next loop turn; fds are closed synchronously, but let it settle.
    await sleep(5);
    assert.equal(openFdCount(), before, 'open fds before and after the test');
  });
}

function isCloexec(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(flags, `no flags line in /proc/self/fdinfo/${fd}`);
  return (parseInt(flags[1]!, 8) & 0o2000000) !== 0;
}

function isOpen(fd: number): boolean {
  try {
    readFileSync(`/proc/self/fdinfo/${fd}`);
    return true;
  } catch {
    return false;
  }
}

const u64le = (n: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};

function readEventfd(fd: number): bigint {
  const b = new Uint8Array(8);
  assert.equal(native().read(fd, b), 8);
  return new DataView(b.buffer).getBigUint64(0, true);
}

/** Collects what a receiving socket reports. */
class Inbox {
  readonly packets: Packet[] = [];
  readonly closes: Array<Error | undefined> = [];
  private wake: (() => void) | undefined;

  constructor(s: SeqpacketSocket) {
    s.receive((p) => { this.packets.push(p); this.wake?.(); }, (e) => { this.closes.push(e); this.wake?.(); });
  }

  /** Resolves once `done()` holds; fails the test after `timeoutMs`. */
  async until(done: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 20);
      });
      this.wake = undefined;
    }
  }
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/**
 * Whether the addon's fdWatch calls back at all. If it does not, every receive in this file would
 * wait forever on a poll that never fires, so the suite is skipped and one test fails instead.
 */
async function fdWatchCallsBack(): Promise<boolean> {
  const n = native();
  const [x, y] = n.socketpair(SOCK_SEQPACKET);
  let called = false;
  const h = n.fdWatch(y, () => {
    called = true;
    n.recvmsg(y, new Uint8Array(16));
  });
  try {
    n.sendmsg(x, new Uint8Array([1]), []);
    for (let i = 0; i < 20 && !called; i++) await sleep(10);
    return called;
  } finally {
    // A callback that could not be made leaves a pending exception, thrown by the next addon call.
    for (let i = 0; i < 3; i++) {
      try {
        n.fdUnwatch(h);
        break;
      } catch { /* that pending exception */ }
    }
    n.close(x);
    n.close(y);
  }
}

/**
 * Runs `script` (an ES module body) in a child node process that gets `fd` as its fd 3 and `args` as
 * process.argv[1...]; resolves with its exit code and output once it has exited and its pipes closed.
 */
async function runChild(script: string, fd: number, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe', fd] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A child that reads packets from fd 3 until the peer closes, then prints their count, size and SHA-256. */
const READER_CHILD = `
const { SeqpacketSocket } = await import(process.argv[1]);
const { createHash } = await import('node:crypto');
await new Promise((r) => setTimeout(r, Number(process.argv[2]))); // let the sender fill the buffer first
const s = new SeqpacketSocket(3);
const hash = createHash('sha256');
let packets = 0, bytes = 0;
s.receive((p) => { packets++; bytes += p.data.length; hash.update(p.data); }, (e) => {
  process.stdout.write(JSON.stringify({ packets, bytes, sha256: hash.digest('hex'), error: e ? String(e) : null }));
  s.close();
});
`;

// The first child process of a process opens libuv's SIGCHLD pipe for good; open it here, so no
// test counts it as a leaked fd.
{
  const [x, y] = native().socketpair(SOCK_SEQPACKET);
  await runChild('', x);
  native().close(x);
  native().close(y);
}

const fdWatchWorks = await fdWatchCallsBack();
const skip = fdWatchWorks ? false : 'the addon\'s fdWatch never calls back (see the failing test)';

it('the addon\'s fdWatch calls back when a socket becomes readable', () => {
  assert.ok(fdWatchWorks, 'no callback within 200 ms: native/src/sock.c watch_cb passes undefined as the receiver of '
    + 'napi_make_callback, which fails (napi_object_expected) and leaves a pending TypeError');
});

describe('SeqpacketSocket', { skip }, () => {
  itNoLeak('pair() gives two connected, close-on-exec ends', async () => {
    const [a, b] = SeqpacketSocket.pair();
    try {
      assert.notEqual(a.fd, b.fd);
      assert.ok(isCloexec(a.fd) && isCloexec(b.fd));
    } finally {
      a.close();
      b.close();
    }
    assert.throws(() => a.fd, /used after close/);
  });

  itNoLeak('packets arrive whole and in order, in both directions', async () => {
    const [a, b] = SeqpacketSocket.pair();
    const atA = new Inbox(a);
    const atB = new Inbox(b);
    try {
      const sent = [bytes(1, 1), bytes(100, 2), bytes(4096, 3), bytes(SEQPACKET_MAX_BYTES, 4), bytes(7, 5)];
      for (const p of sent) a.send(p);
      b.send(bytes(33, 9));
      await atB.until(() => atB.packets.length === sent.length, 'five packets');
      await atA.until(() => atA.packets.length === 1, 'the reply');
      assert.deepEqual(atB.packets.map((p) => Buffer.from(p.data).toString('hex')), sent.map((p) => Buffer.from(p).toString('hex')));
      assert.ok(atB.packets.every((p) => p.fds.length === 0));
      assert.deepEqual(atA.packets[0]!.data, bytes(33, 9));
      assert.deepEqual([atA.closes, atB.closes], [[], []]);
    } finally {
      a.close();
      b.close();
    }
  });

  itNoLeak('a received packet is a copy: later packets do not overwrite it', async () => {
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    try {
      a.send(bytes(64, 1));
      a.send(bytes(64, 2));
      await atB.until(() => atB.packets.length === 2, 'two packets');
      assert.deepEqual(atB.packets[0]!.data, bytes(64, 1));
    } finally {
      a.close();
      b.close();
    }
  });

  itNoLeak('file descriptors ride along and work on the other side', async () => {
    const n = native();
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    const efd1 = n.eventfd(0, EFD_NONBLOCK);
    const efd2 = n.eventfd(0, EFD_NONBLOCK);
    try {
      a.send(bytes(10, 0), [efd1, efd2]);
      await atB.until(() => atB.packets.length === 1, 'the packet with fds');
      const [r1, r2] = atB.packets[0]!.fds;
      assert.equal(atB.packets[0]!.fds.length, 2);
      try {
        assert.ok(r1! !== efd1 && r2! !== efd2, 'received fds are new descriptors');
        assert.ok(isCloexec(r1!) && isCloexec(r2!), 'received fds are close-on-exec');
        // Same order, same objects: a write through each received fd shows on its original.
        n.write(r1!, u64le(5n));
        n.write(r2!, u64le(11n));
        assert.equal(readEventfd(efd1), 5n);
        assert.equal(readEventfd(efd2), 11n);
      } finally {
        n.close(r1!);
        n.close(r2!);
      }
    } finally {
      n.close(efd1);
      n.close(efd2);
      a.close();
      b.close();
    }
  });

  itNoLeak('send refuses a packet over SEQPACKET_MAX_BYTES and sends nothing', async () => {
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    try {
      assert.throws(() => a.send(new Uint8Array(SEQPACKET_MAX_BYTES + 1)), (e: unknown) => {
        assert.ok(e instanceof SeqpacketError, String(e));
        assert.equal(e.code, 'ERR_SEQPACKET');
        assert.match(e.message, new RegExp(`${SEQPACKET_MAX_BYTES + 1} bytes is over ${SEQPACKET_MAX_BYTES}`));
        return true;
      });
      a.send(bytes(3, 3));
      await atB.until(() => atB.packets.length === 1, 'the next packet');
      assert.deepEqual(atB.packets[0]!.data, bytes(3, 3), 'the refused packet was not sent');
    } finally {
      a.close();
      b.close();
    }
  });

  itNoLeak('a packet over the limit from a peer is reported as an error once, and its fds are closed', async () => {
    const n = native();
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    const efd = n.eventfd(0, EFD_NONBLOCK);
    try {
      // A peer that does not use SeqpacketSocket.send can exceed the limit.
      n.sendmsg(a.fd, new Uint8Array(SEQPACKET_MAX_BYTES + 100), [efd]);
      a.send(bytes(5, 5));
      await atB.until(() => atB.closes.length > 0, 'the error');
      await sleep(30);
      assert.equal(atB.closes.length, 1);
      assert.ok(atB.closes[0] instanceof SeqpacketError, String(atB.closes[0]));
      assert.match(atB.closes[0].message, /over the size limit/);
      assert.equal(atB.packets.length, 0, 'nothing after the error is delivered');
    } finally {
      n.close(efd);
      a.close();
      b.close();
    }
  });

  itNoLeak('a peer close is reported once, after the packets sent before it', async () => {
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    try {
      a.send(bytes(8, 1));
      a.send(bytes(8, 2));
      a.close();
      await atB.until(() => atB.closes.length > 0, 'the close');
      await sleep(50);
      assert.equal(atB.packets.length, 2);
      assert.deepEqual(atB.closes, [undefined], 'one close, without an error');
    } finally {
      b.close();
    }
  });

  itNoLeak('receive() twice is refused; stopReceiving() then receive() again works', async () => {
    const [a, b] = SeqpacketSocket.pair();
    try {
      b.receive(() => assert.fail('the first receiver was stopped'), () => {});
      assert.throws(() => b.receive(() => {}, () => {}), (e: unknown) => e instanceof SeqpacketError && /already receiving/.test(e.message));
      b.stopReceiving();
      const atB = new Inbox(b);
      a.send(bytes(4, 4));
      await atB.until(() => atB.packets.length === 1, 'the packet');
    } finally {
      a.close();
      b.close();
    }
  });

  itNoLeak('closing a socket twice is harmless and closes its fd', async () => {
    const [a, b] = SeqpacketSocket.pair();
    const fd = a.fd;
    a.close();
    a.close();
    assert.equal(isOpen(fd), false);
    b.close();
  });

  itNoLeak('an empty packet is refused by send, so it is never mistaken for the peer closing', async () => {
    const n = native();
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    const efd = n.eventfd(0, EFD_NONBLOCK);
    try {
      for (const fds of [[], [efd]]) {
        assert.throws(() => a.send(new Uint8Array(0), fds), (e: unknown) => {
          assert.ok(e instanceof SeqpacketError, String(e));
          assert.match(e.message, /empty packet/);
          return true;
        });
      }
      a.send(bytes(2, 2));
      await atB.until(() => atB.packets.length === 1 || atB.closes.length > 0, 'the next packet');
      assert.deepEqual(atB.closes, [], 'the receiver took an empty packet for a close');
      assert.deepEqual(atB.packets[0]!.data, bytes(2, 2));
      assert.deepEqual(atB.packets[0]!.fds, [], 'the refused packet\'s fd was not sent');
    } finally {
      n.close(efd);
      a.close();
      b.close();
    }
  });

  itNoLeak('a few MiB get through to a peer that reads in another process, waiting whenever the send buffer is full', async () => {
    const [a, b] = SeqpacketSocket.pair();
    let child: Promise<{ code: number | null; stdout: string; stderr: string }>;
    try {
      child = runChild(READER_CHILD, b.fd, [new URL('./seqpacket.js', import.meta.url).href, '200']);
    } finally {
      b.close(); // the child has its own copy; the parent's would keep the socket from ever closing
    }
    // Receiving on the sending end too makes it O_NONBLOCK (uv_poll_init), as in a real channel.
    const atA = new Inbox(a);
    a.sendTimeoutMs = 20_000; // a slow machine may take long to start the child
    const hash = createHash('sha256');
    const count = 64; // 4 MiB, ~20 times the default send buffer
    try {
      for (let i = 0; i < count; i++) {
        const p = bytes(SEQPACKET_MAX_BYTES, i);
        hash.update(p);
        a.send(p);
      }
    } finally {
      a.close();
    }
    const { code, stdout, stderr } = await child;
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { packets: count, bytes: count * SEQPACKET_MAX_BYTES, sha256: hash.digest('hex'), error: null });
    assert.deepEqual([atA.packets, atA.closes], [[], []]);
  });

  itNoLeak('a send to a peer that stopped reading fails after sendTimeoutMs, having sent none of that packet', async () => {
    const [a, b] = SeqpacketSocket.pair();
    new Inbox(a); // O_NONBLOCK on a's side, as in a real channel; the helper does not depend on it
    a.sendTimeoutMs = 150;
    let sent = 0;
    let error: unknown;
    const started = performance.now();
    try {
      for (; sent < 1000; sent++) a.send(bytes(SEQPACKET_MAX_BYTES, sent));
    } catch (e) {
      error = e;
    }
    const waited = performance.now() - started;
    try {
      assert.ok(error instanceof SeqpacketError, String(error));
      assert.match(error.message, /timed out after 150 ms .*the peer stopped reading/);
      assert.ok(sent > 0 && sent < 1000, `${sent} packets went out before the buffer filled`);
      assert.ok(waited >= 140, `gave up after ${waited.toFixed(0)} ms`);
      assert.equal(native().waitWritable(a.fd, 0), false, 'the send buffer is still full');
      // The receiver gets exactly the packets before the failed one, whole; then the stream goes on.
      const atB = new Inbox(b);
      await atB.until(() => atB.packets.length === sent, `${sent} packets`);
      assert.equal(native().waitWritable(a.fd, 1000), true, 'room again once the peer has read');
      a.send(bytes(9, 9));
      await atB.until(() => atB.packets.length === sent + 1, 'the packet after');
      assert.ok(atB.packets.slice(0, sent).every((p, i) => p.data.length === SEQPACKET_MAX_BYTES && p.data[0] === bytes(1, i)[0]));
      assert.deepEqual(atB.packets[sent]!.data, bytes(9, 9));
      assert.deepEqual(atB.closes, []);
    } finally {
      a.close();
      b.close();
    }
  });

  it('waitWritable rejects bad arguments and a closed fd', () => {
    const n = native();
    assert.throws(() => n.waitWritable(0, -1), TypeError);
    assert.throws(() => n.waitWritable('x' as unknown as number, 0), TypeError);
    assert.throws(() => n.waitWritable(999_999, 0), (e: unknown) => (e as { code?: string }).code === 'EBADF');
  });
});
