// SeqpacketSocket against the real kernel: a connected pair, whole packets in order, file
// descriptors over SCM_RIGHTS, the size limit on both sides, and a peer close reported exactly
// once. Every test also checks that it leaves no fd open.

import assert from 'node:assert/strict';
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

  itNoLeak('an empty packet is not mistaken for the peer closing', async () => {
    const [a, b] = SeqpacketSocket.pair();
    const atB = new Inbox(b);
    try {
      // Either send refuses an empty packet, or the receiver delivers it; both keep the stream going.
      try {
        a.send(new Uint8Array(0));
      } catch (e) {
        assert.ok(e instanceof SeqpacketError, String(e));
      }
      a.send(bytes(2, 2));
      await atB.until(() => atB.packets.some((p) => p.data.length === 2) || atB.closes.length > 0, 'the next packet');
      assert.deepEqual(atB.closes, [], 'the receiver took an empty packet for a close');
    } finally {
      a.close();
      b.close();
    }
  }, { todo: 'bug: recvmsg returns 0 for an empty SEQPACKET record as for EOF; send() should refuse empty packets' });
});
