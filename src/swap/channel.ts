// A handover channel: typed messages over a SOCK_SEQPACKET socket, with file descriptors riding on
// a message's first fragment. Incoming messages are buffered until someone waits for them, so
// several VM moves can share the one channel.

import { native } from '../sys/native.js';
import type { SeqpacketSocket } from '../sys/seqpacket.js';
import { HandoverError, type Message, MessageDecoder, MessageType, encodeMessage } from './protocol.js';

export interface Received extends Message {
  fds: number[];
}

interface Waiter {
  match: (m: Received) => boolean;
  resolve: (m: Received) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ChannelClosedError extends Error {
  readonly code = 'ERR_HANDOVER_CLOSED';
}

export class HandoverChannel {
  private nextId = 1;
  private readonly decoder = new MessageDecoder();
  private pendingFds: number[] = [];
  private inbox: Received[] = [];
  private waiters: Waiter[] = [];
  private failure: Error | undefined;
  private listener: ((m: Received) => void) | undefined;

  constructor(private readonly socket: SeqpacketSocket) {
    socket.receive((p) => this.onPacket(p.data, p.fds), (e) => this.fail(e ?? new ChannelClosedError('the other instance closed the handover channel')));
  }

  /** Delivers every message not claimed by a waiter to `listener` instead of buffering it. */
  listen(listener: (m: Received) => void): void {
    this.listener = listener;
    const queued = this.inbox;
    this.inbox = [];
    for (const m of queued) listener(m);
  }

  send(type: MessageType, body: Record<string, unknown>, opts: { blob?: Uint8Array; fds?: readonly number[] } = {}): void {
    if (this.failure) throw this.failure;
    const frames = encodeMessage(this.nextId++, { type, body, blob: opts.blob ?? new Uint8Array(0) });
    frames.forEach((f, i) => this.socket.send(f, i === 0 ? opts.fds ?? [] : []));
  }

  /** The next message that `match` accepts; rejects on timeout or when the channel fails. */
  waitFor(what: string, match: (m: Received) => boolean, timeoutMs: number): Promise<Received> {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new HandoverError('ERR_HANDOVER_SEQUENCE', `timed out after ${timeoutMs} ms waiting for ${what} from the other instance`));
      }, timeoutMs);
      const waiter: Waiter = { match, resolve, reject, timer };
      this.waiters.push(waiter);
    });
  }

  get failed(): Error | undefined { return this.failure; }

  close(): void {
    this.socket.close();
    this.fail(new ChannelClosedError('the handover channel was closed'));
  }

  private onPacket(data: Uint8Array, fds: number[]): void {
    this.pendingFds.push(...fds);
    let m;
    try {
      m = this.decoder.push(data);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (!m) return;
    const received: Received = { ...m, fds: this.pendingFds };
    this.pendingFds = [];
    const w = this.waiters.find((x) => x.match(received));
    if (w) {
      clearTimeout(w.timer);
      this.waiters = this.waiters.filter((x) => x !== w);
      w.resolve(received);
    } else if (this.listener) {
      this.listener(received);
    } else {
      this.inbox.push(received);
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.socket.stopReceiving();
    for (const fd of this.pendingFds) native().close(fd);
    for (const m of this.inbox) for (const fd of m.fds) native().close(fd);
    this.pendingFds = [];
    this.inbox = [];
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.waiters = [];
  }
}
