// A SOCK_SEQPACKET unix socket carrying whole messages with file descriptors (SCM_RIGHTS), read
// asynchronously through a libuv poll. Sends are synchronous: when the socket's send buffer is full
// (~200 KiB: a multi-MiB message outruns it), send waits in poll(2) for the peer to read, up to
// sendTimeoutMs in all; receives never block. It knows nothing of what the messages mean.
//
// Deadlock caveat: a waiting send blocks this thread, so the peer must be read by another thread or
// process. Sending more than a send buffer's worth to the other end of a pair this same thread
// receives on can never drain; such a send fails after sendTimeoutMs instead of hanging.

import { OwnedFd } from './fd.js';
import { type FdWatchHandle, SOCK_SEQPACKET, native } from './native.js';

/** The largest datagram either side sends; bigger payloads are split by the protocol above. */
export const SEQPACKET_MAX_BYTES = 64 * 1024;
/** How long one send may wait, in all, for the peer to make room before it gives up. */
export const SEQPACKET_SEND_TIMEOUT_MS = 5000;

export interface Packet {
  data: Uint8Array;
  fds: number[];
}

export class SeqpacketError extends Error {
  readonly code = 'ERR_SEQPACKET';
}

export class SeqpacketSocket {
  private readonly owned: OwnedFd;
  private watch: FdWatchHandle | undefined;
  private readonly buf = new Uint8Array(SEQPACKET_MAX_BYTES + 1);
  /** The longest one send waits for the peer to read before throwing; see the caveat above. */
  sendTimeoutMs = SEQPACKET_SEND_TIMEOUT_MS;

  constructor(fd: number) {
    this.owned = new OwnedFd(fd);
  }

  /** A connected pair; the caller hands one end to another process. */
  static pair(): [SeqpacketSocket, SeqpacketSocket] {
    const [a, b] = native().socketpair(SOCK_SEQPACKET);
    return [new SeqpacketSocket(a), new SeqpacketSocket(b)];
  }

  get fd(): number { return this.owned.fd; }

  /**
   * Sends one packet (with fds), synchronously. While the send buffer is full it waits for the peer
   * to read, and throws a SeqpacketError when sendTimeoutMs pass without room; nothing of the packet
   * (nor its fds) has gone out then. Empty packets are refused: the receiving side cannot tell one
   * from the peer closing.
   */
  send(data: Uint8Array, fds: readonly number[] = []): void {
    if (data.byteLength === 0) throw new SeqpacketError('refusing to send an empty packet: the receiver would take it for the peer closing');
    if (data.byteLength > SEQPACKET_MAX_BYTES) throw new SeqpacketError(`packet of ${data.byteLength} bytes is over ${SEQPACKET_MAX_BYTES}`);
    const n = native();
    const list = [...fds];
    let deadline: number | undefined;
    for (;;) {
      const sent = n.sendmsg(this.fd, data, list); // never blocks; -1 when the send buffer is full
      if (sent === data.byteLength) return;
      if (sent !== -1) throw new SeqpacketError(`short send: ${sent} of ${data.byteLength} bytes`);
      const now = performance.now();
      deadline ??= now + this.sendTimeoutMs;
      const left = Math.ceil(deadline - now);
      if (left <= 0) {
        throw new SeqpacketError(`send of a ${data.byteLength}-byte packet timed out after ${this.sendTimeoutMs} ms with the send buffer full: the peer stopped reading`);
      }
      n.waitWritable(this.fd, left);
    }
  }

  /**
   * Calls onPacket for each packet as it arrives, and onClose once when the peer is gone.
   * A packet over the size limit, or with cut-off fds, is reported as an error and its fds closed.
   */
  receive(onPacket: (p: Packet) => void, onClose: (error?: Error) => void): void {
    if (this.watch) throw new SeqpacketError('already receiving');
    let closed = false;
    const close = (error?: Error): void => {
      if (closed) return;
      closed = true;
      this.stopReceiving();
      onClose(error);
    };
    this.watch = native().fdWatch(this.fd, (status) => {
      if (closed) return;
      if (status < 0) { close(new SeqpacketError(`poll failed with status ${status}`)); return; }
      let r: { bytes: number; fds: number[]; truncated: boolean };
      try {
        r = native().recvmsg(this.fd, this.buf);
      } catch (e) {
        close(e instanceof Error ? e : new SeqpacketError(String(e)));
        return;
      }
      if (r.bytes < 0) return; // spurious wake-up
      if (r.bytes === 0 && r.fds.length === 0) { close(); return; }
      if (r.truncated || r.bytes > SEQPACKET_MAX_BYTES) {
        for (const fd of r.fds) native().close(fd);
        close(new SeqpacketError('received a packet over the size limit or with cut-off file descriptors'));
        return;
      }
      onPacket({ data: this.buf.slice(0, r.bytes), fds: r.fds });
    });
  }

  stopReceiving(): void {
    if (this.watch) {
      native().fdUnwatch(this.watch);
      this.watch = undefined;
    }
  }

  close(): void {
    this.stopReceiving();
    this.owned.close();
  }
}
