// HandoverChannel over a real SOCK_SEQPACKET socketpair: messages with blobs and fds (a memfd and an
// eventfd that must still work on the other side), multi-fragment messages, waitFor out of order,
// timeouts, peer close, corrupted frames, and no fd left open by any of it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { EFD_NONBLOCK, MAP_SHARED, PROT_READ, PROT_WRITE, SOCK_SEQPACKET, native } from '../sys/native.js';
import { SeqpacketSocket } from '../sys/seqpacket.js';
import { ChannelClosedError, HandoverChannel, type Received } from './channel.js';
import { FRAME_HEADER_BYTES, HandoverError, MAX_FRAGMENT_PAYLOAD, MessageType, encodeMessage } from './protocol.js';

const WAIT_MS = 2000;

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function isOpen(fd: number): boolean {
  try {
    readFileSync(`/proc/self/fdinfo/${fd}`);
    return true;
  } catch {
    return false;
  }
}

/** An `it` that fails if the body leaves more (or fewer) fds open than it found. */
function itNoLeak(name: string, body: () => Promise<void>, opts: { todo?: string } = {}): void {
  it(name, opts, async () => {
    const before = openFdCount();
    await body();
    await sleep(5);
    assert.equal(openFdCount(), before, 'open fds before and after the test');
  });
}

/** Two channels on the two ends of one socketpair; `close` ends both. */
function channels(): { a: HandoverChannel; b: HandoverChannel; close: () => void } {
  const [sa, sb] = SeqpacketSocket.pair();
  const a = new HandoverChannel(sa);
  const b = new HandoverChannel(sb);
  return { a, b, close: () => { a.close(); b.close(); } };
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

function memfdOf(size: number): number {
  const fd = native().memfdCreate('swapvisor-channel-test', 0);
  native().ftruncate(fd, size);
  return fd;
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 9) + seed) & 0xff;
  return b;
}

const ofType = (type: MessageType) => (m: Received): boolean => m.type === type;

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Error, String(e));
    return e;
  }
  return assert.fail('the promise resolved');
}

const codeOf = (e: unknown): string | undefined => (e as { code?: string } | undefined)?.code;

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) native().close(fd);
}

/**
 * Runs `script` (an ES module body) in a child node process that gets `fd` as its fd 3 and `args` as
 * process.argv[1...]; resolves with its exit code and stderr once it has exited and its pipes closed.
 */
async function runChild(script: string, fd: number, args: string[] = []): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

// The first child process of a process opens libuv's SIGCHLD pipe for good; open it here, so no
// test counts it as a leaked fd.
{
  const [x, y] = native().socketpair(SOCK_SEQPACKET);
  await runChild('', x);
  native().close(x);
  native().close(y);
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

describe('HandoverChannel', { skip }, () => {
  itNoLeak('a message with a blob, a memfd and an eventfd arrives intact, and the fds work on the other side', async () => {
    const n = native();
    const { a, b, close } = channels();
    const PAGE = 4096;
    const mem = memfdOf(4 * PAGE);
    const efd = n.eventfd(0, EFD_NONBLOCK);
    const map = n.mmap(mem, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
    try {
      const blob = pattern(1000, 3);
      a.send(MessageType.ShellReady, { vm: 'web-1', slots: [0, 1] }, { blob, fds: [mem, efd] });
      const m = await b.waitFor('ShellReady', ofType(MessageType.ShellReady), WAIT_MS);
      try {
        assert.deepEqual(m.body, { vm: 'web-1', slots: [0, 1] });
        assert.deepEqual(m.blob, blob);
        assert.equal(m.fds.length, 2);
        const [rmem, refd] = m.fds as [number, number];
        assert.ok(rmem !== mem && refd !== efd, 'received fds are new descriptors');
        // Guest RAM seen through the received memfd is the same memory as the sender's mapping.
        assert.equal(n.write(rmem, pattern(PAGE, 9)), PAGE);
        assert.deepEqual(new Uint8Array(map.buffer, 0, PAGE), pattern(PAGE, 9));
        n.write(refd, u64le(42n));
        assert.equal(readEventfd(efd), 42n);
      } finally {
        closeAll(m.fds);
      }
    } finally {
      n.munmap(map.buffer);
      closeAll([mem, efd]);
      close();
    }
  });

  itNoLeak('a multi-fragment message carries its fds once, with the whole message', async () => {
    const n = native();
    const { a, b, close } = channels();
    const efd = n.eventfd(0, EFD_NONBLOCK);
    try {
      const blob = pattern(2 * MAX_FRAGMENT_PAYLOAD + 777, 1); // three fragments
      a.send(MessageType.VmState, { vm: 'db' }, { blob, fds: [efd] });
      a.send(MessageType.VmRunning, { vm: 'db' });
      const state = await b.waitFor('VmState', ofType(MessageType.VmState), WAIT_MS);
      const running = await b.waitFor('VmRunning', ofType(MessageType.VmRunning), WAIT_MS);
      try {
        assert.equal(state.blob.length, blob.length);
        assert.ok(Buffer.from(state.blob).equals(Buffer.from(blob)));
        assert.equal(state.fds.length, 1);
        assert.deepEqual(running.fds, [], 'fds belong to the message they were sent with');
        n.write(state.fds[0]!, u64le(3n));
        assert.equal(readEventfd(efd), 3n);
      } finally {
        closeAll(state.fds);
      }
    } finally {
      closeAll([efd]);
      close();
    }
  });

  // A send waits synchronously for room in the send buffer, so a message bigger than that buffer
  // needs its reader in another thread or process: the sender here is a child instance.
  itNoLeak('VM-state-sized messages (1 and 4 MiB) from another process get through, with the fd and the message after them', async () => {
    const [sa, sb] = SeqpacketSocket.pair();
    const b = new HandoverChannel(sb);
    const sender = `
      const [{ SeqpacketSocket }, { HandoverChannel }, { MessageType }, { native }] = await Promise.all(process.argv.slice(1, 5).map((u) => import(u)));
      const pattern = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 9) + seed) & 0xff; return b; };
      const a = new HandoverChannel(new SeqpacketSocket(3));
      const efd = native().eventfd(0, 0);
      native().write(efd, new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0]));
      a.send(MessageType.VmState, { vm: 'one' }, { blob: pattern(1024 * 1024, 5), fds: [efd] });
      a.send(MessageType.VmState, { vm: 'four' }, { blob: pattern(4 * 1024 * 1024, 6) });
      a.send(MessageType.VmRunning, { vm: 'four' });
      a.close();
    `;
    const url = (rel: string): string => new URL(rel, import.meta.url).href;
    let child: Promise<{ code: number | null; stderr: string }>;
    try {
      child = runChild(sender, sa.fd, [url('../sys/seqpacket.js'), url('./channel.js'), url('./protocol.js'), url('../sys/native.js')]);
    } finally {
      sa.close(); // the child has its own copy
    }
    try {
      const ofVm = (vm: string) => (m: Received): boolean => m.type === MessageType.VmState && m.body['vm'] === vm;
      // All waiters up front: the child closes right after sending, and a close drops unclaimed messages.
      const [one, four] = await Promise.all([
        b.waitFor('VmState one', ofVm('one'), 20_000), b.waitFor('VmState four', ofVm('four'), 20_000),
        b.waitFor('VmRunning', ofType(MessageType.VmRunning), 20_000),
      ]);
      try {
        assert.ok(Buffer.from(one.blob).equals(Buffer.from(pattern(1024 * 1024, 5))), '1 MiB blob');
        assert.ok(Buffer.from(four.blob).equals(Buffer.from(pattern(4 * 1024 * 1024, 6))), '4 MiB blob');
        assert.equal(one.fds.length, 1);
        assert.deepEqual(four.fds, []);
        assert.equal(readEventfd(one.fds[0]!), 42n, 'the fd is the child\'s eventfd');
      } finally {
        closeAll(one.fds);
      }
      const { code, stderr } = await child;
      assert.equal(code, 0, stderr);
    } finally {
      b.close();
    }
  });

  itNoLeak('waitFor takes messages out of order; the rest stay queued for later waiters and listen()', async () => {
    const { a, b, close } = channels();
    try {
      a.send(MessageType.Hello, { version: '1.0.0' });
      a.send(MessageType.PrepareVm, { vm: 'b' });
      a.send(MessageType.PrepareVm, { vm: 'a' });
      a.send(MessageType.Ready, {});
      const vmA = await b.waitFor('PrepareVm a', (m) => m.type === MessageType.PrepareVm && m.body.vm === 'a', WAIT_MS);
      assert.equal(vmA.body.vm, 'a');
      const ready = await b.waitFor('Ready', ofType(MessageType.Ready), WAIT_MS);
      assert.equal(ready.type, MessageType.Ready);
      // Waiters registered before their message arrives, resolved in the order the messages come.
      const later = b.waitFor('Retire', ofType(MessageType.Retire), WAIT_MS);
      const earlier = b.waitFor('Abort', ofType(MessageType.Abort), WAIT_MS);
      a.send(MessageType.Abort, { reason: 'test' });
      a.send(MessageType.Retire, {});
      assert.equal((await earlier).body.reason, 'test');
      assert.equal((await later).type, MessageType.Retire);
      // Unclaimed messages go to a listener: first the queued ones, in arrival order, then new ones.
      const heard: unknown[] = [];
      b.listen((m) => heard.push(m.body));
      assert.deepEqual(heard, [{ version: '1.0.0' }, { vm: 'b' }]);
      a.send(MessageType.DiscardVm, { vm: 'c' });
      const retired = b.waitFor('Retired', ofType(MessageType.Retired), WAIT_MS);
      a.send(MessageType.Retired, {});
      await retired;
      assert.deepEqual(heard, [{ version: '1.0.0' }, { vm: 'b' }, { vm: 'c' }], 'a waiter still wins over the listener');
    } finally {
      close();
    }
  });

  itNoLeak('a waitFor that times out rejects with a message naming what it waited for', async () => {
    const { a, b, close } = channels();
    try {
      const started = Date.now();
      const e = await rejection(b.waitFor('ShellReady for web-1', ofType(MessageType.ShellReady), 50));
      assert.ok(Date.now() - started >= 45, 'not before the timeout');
      assert.ok(e instanceof HandoverError, String(e));
      assert.match(e.message, /timed out after 50 ms waiting for ShellReady for web-1/);
      // The timed-out waiter is gone: a message that arrives later stays queued for the next one.
      a.send(MessageType.ShellReady, { vm: 'web-1' });
      const m = await b.waitFor('ShellReady', ofType(MessageType.ShellReady), WAIT_MS);
      assert.equal(m.body.vm, 'web-1');
      assert.equal(b.failed, undefined, 'a timeout does not fail the channel');
    } finally {
      close();
    }
  });

  itNoLeak('a peer close rejects pending waiters with ERR_HANDOVER_CLOSED, and later calls too', async () => {
    const { a, b } = channels();
    try {
      const w1 = a.waitFor('Ready', ofType(MessageType.Ready), WAIT_MS);
      const w2 = a.waitFor('VmRunning', ofType(MessageType.VmRunning), WAIT_MS);
      b.close();
      for (const w of [w1, w2]) {
        const e = await rejection(w);
        assert.ok(e instanceof ChannelClosedError, String(e));
        assert.equal(e.code, 'ERR_HANDOVER_CLOSED');
        assert.match(e.message, /other instance closed/);
      }
      assert.equal(codeOf(a.failed), 'ERR_HANDOVER_CLOSED');
      assert.equal((await rejection(a.waitFor('Ready', ofType(MessageType.Ready), WAIT_MS))).code, 'ERR_HANDOVER_CLOSED');
      assert.throws(() => a.send(MessageType.Hello, {}), (e: unknown) => e instanceof ChannelClosedError);
    } finally {
      a.close();
    }
  });

  itNoLeak('closing our end rejects our waiters and closes the fds of queued messages', async () => {
    const n = native();
    const { a, b } = channels();
    const efd = n.eventfd(0, EFD_NONBLOCK);
    try {
      a.send(MessageType.ShellReady, { vm: 'x' }, { fds: [efd] });
      // Wait for the message to be queued (a waiter for something else does not take it).
      const seen = b.waitFor('ShellReady', ofType(MessageType.ShellReady), WAIT_MS);
      const m = await seen;
      a.send(MessageType.ShellReady, { vm: 'y' }, { fds: [efd] });
      a.send(MessageType.Ready, {});
      await b.waitFor('Ready', ofType(MessageType.Ready), WAIT_MS); // so 'y' is in the inbox now
      const pending = b.waitFor('never', () => false, WAIT_MS);
      closeAll(m.fds);
      const before = openFdCount();
      b.close();
      assert.equal(openFdCount(), before - 2, 'the socket and the queued message\'s fd are closed');
      assert.equal((await rejection(pending)).code, 'ERR_HANDOVER_CLOSED');
    } finally {
      closeAll([efd]);
      a.close();
    }
  });

  itNoLeak('a corrupted frame fails the channel with the HandoverError and closes fds nobody took', async () => {
    const n = native();
    const [raw, sb] = SeqpacketSocket.pair();
    const b = new HandoverChannel(sb);
    const efd = n.eventfd(0, EFD_NONBLOCK);
    try {
      // A good message with an fd that nobody waits for, then a damaged one (also with an fd).
      for (const f of encodeMessage(1, { type: MessageType.ShellReady, body: { vm: 'a' }, blob: new Uint8Array(0) })) raw.send(f, [efd]);
      for (const f of encodeMessage(2, { type: MessageType.Ready, body: {}, blob: new Uint8Array(0) })) raw.send(f);
      await b.waitFor('Ready', ofType(MessageType.Ready), WAIT_MS); // the ShellReady and its fd are queued now
      const [bad] = encodeMessage(3, { type: MessageType.VmState, body: { vm: 'b' }, blob: pattern(100, 1) });
      bad![FRAME_HEADER_BYTES + 10]! ^= 0x20;
      const waiting = b.waitFor('VmState', ofType(MessageType.VmState), WAIT_MS);
      const before = openFdCount();
      raw.send(bad!, [efd]);
      const e = await rejection(waiting);
      assert.ok(e instanceof HandoverError, String(e));
      assert.equal(e.code, 'ERR_HANDOVER_CHECKSUM');
      assert.equal(b.failed, e);
      assert.equal(openFdCount(), before - 1, 'the fd queued with the good message is closed; the damaged frame\'s fd too');
      assert.throws(() => b.send(MessageType.Abort, {}), (x: unknown) => x === e);
      assert.equal(await rejection(b.waitFor('ShellReady', ofType(MessageType.ShellReady), WAIT_MS)), e, 'the queued message was dropped');
    } finally {
      closeAll([efd]);
      b.close();
      raw.close();
    }
  });

  itNoLeak('a frame that is not a handover frame at all fails the channel with ERR_HANDOVER_MAGIC', async () => {
    const [raw, sb] = SeqpacketSocket.pair();
    const b = new HandoverChannel(sb);
    try {
      const waiting = b.waitFor('Hello', ofType(MessageType.Hello), WAIT_MS);
      raw.send(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: swapvisor\r\n\r\n'));
      const e = await rejection(waiting);
      assert.ok(e instanceof HandoverError);
      assert.equal(e.code, 'ERR_HANDOVER_MAGIC');
    } finally {
      b.close();
      raw.close();
    }
  });

  itNoLeak('fds that came with the first fragment of an unfinished message are closed when the channel fails', async () => {
    const n = native();
    const [raw, sb] = SeqpacketSocket.pair();
    const b = new HandoverChannel(sb);
    const efd = n.eventfd(0, EFD_NONBLOCK);
    try {
      const frames = encodeMessage(3, { type: MessageType.VmState, body: {}, blob: pattern(MAX_FRAGMENT_PAYLOAD + 5, 2) });
      const waiting = b.waitFor('VmState', ofType(MessageType.VmState), WAIT_MS);
      const before = openFdCount();
      raw.send(frames[0]!, [efd]);
      raw.send(frames[0]!); // a repeated first fragment: out of sequence
      const e = await rejection(waiting);
      assert.equal(e.code, 'ERR_HANDOVER_SEQUENCE');
      assert.equal(openFdCount(), before, 'the fd received with the first fragment was closed');
    } finally {
      closeAll([efd]);
      b.close();
      raw.close();
    }
  });

  itNoLeak('close() twice is harmless and leaves the channel failed as closed', async () => {
    const [sa, sb] = SeqpacketSocket.pair();
    const fd = sa.fd;
    const a = new HandoverChannel(sa);
    const b = new HandoverChannel(sb);
    for (let i = 0; i < 2; i++) {
      a.close();
      b.close();
    }
    assert.equal(codeOf(a.failed), 'ERR_HANDOVER_CLOSED');
    assert.equal(isOpen(fd), false);
  });
});
