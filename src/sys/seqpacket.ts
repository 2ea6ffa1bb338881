// A SOCK_SEQPACKET unix socket carrying whole messages with file descriptors (SCM_RIGHTS), read
// asynchronously through a libuv poll. Sends block (messages are small and the peer is local);
// receives never do. It knows nothing of what the messages mean.

import { OwnedFd } from './fd.js';
import { type FdWatchHandle, SOCK_SEQPACKET, native } from './native.js';

/** The largest datagram either side sends; bigger payloads are split by the protocol above. */
export const SEQPACKET_MAX_BYTES = 64 * 1024;

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

  constructor(fd: number) {
    this.owned = new OwnedFd(fd);
  }

  /** A connected pair; the caller hands one end to another process. */
  static pair(): [SeqpacketSocket, SeqpacketSocket] {
    const [a, b] = native().socketpair(SOCK_SEQPACKET);
    return [new SeqpacketSocket(a), new SeqpacketSocket(b)];
  }

  get fd(): number { return this.owned.fd; }

  send(data: Uint8Array, fds: readonly number[] = []): void {
    if (data.byteLength > SEQPACKET_MAX_BYTES) throw new SeqpacketError(`packet of ${data.byteLength} bytes is over ${SEQPACKET_MAX_BYTES}`);
    const n = native().sendmsg(this.fd, data, [...fds]);
    if (n !== data.byteLength) throw new SeqpacketError(`short send: ${n} of ${data.byteLength} bytes`);
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
