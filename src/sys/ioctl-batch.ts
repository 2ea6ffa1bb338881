// Several ioctls in one native call (native/src/fd.c, ioctlBatch): a VM's complete KVM state is
// some twenty get or set ioctls, and a hot swap's pause window pays for every crossing between
// JavaScript and C. The arguments are laid out in one buffer; the caller gets a view of each.

import { native } from './native.js';

export interface BatchedIoctl {
  fd: number;
  request: number;
  /** Bytes of the argument: at least the size the request encodes. */
  size: number;
}

/** A failed ioctl of a batch: which one, and the errno. The ones before it took effect. */
export class IoctlBatchError extends Error {
  readonly code = 'ERR_IOCTL_BATCH';
  constructor(readonly index: number, readonly request: number, readonly errno: number) {
    super(`ioctl 0x${request.toString(16)} (call ${index} of a batch) failed with errno ${errno}`);
  }
}

const align8 = (n: number): number => (n + 7) & ~7;

export class IoctlBatch {
  private readonly fds: Int32Array;
  private readonly requests: Uint32Array;
  private readonly offsets: Uint32Array;
  private readonly lengths: Uint32Array;
  private readonly bytes: number;

  constructor(calls: readonly BatchedIoctl[]) {
    const n = calls.length;
    this.fds = new Int32Array(n);
    this.requests = new Uint32Array(n);
    this.offsets = new Uint32Array(n);
    this.lengths = new Uint32Array(n);
    let at = 0;
    calls.forEach((c, i) => {
      this.fds[i] = c.fd;
      this.requests[i] = c.request;
      this.offsets[i] = at;
      this.lengths[i] = c.size;
      at += align8(c.size); // every argument 8-aligned, as the kernel's structs expect
    });
    this.bytes = at;
  }

  /** A fresh, zeroed argument buffer for one run, and a view of each call's argument in it. */
  buffer(): { buf: Uint8Array; args: Uint8Array[] } {
    const buf = new Uint8Array(this.bytes);
    const args = Array.from(this.offsets, (o, i) => buf.subarray(o, o + this.lengths[i]!));
    return { buf, args };
  }

  /** Runs every call in order; returns their results. Throws IoctlBatchError at the first failure. */
  run(buf: Uint8Array): Int32Array {
    const results = new Int32Array(this.fds.length);
    const done = native().ioctlBatch(this.fds, this.requests, buf, this.offsets, this.lengths, results);
    if (done < this.fds.length) throw new IoctlBatchError(done, this.requests[done]!, -results[done]!);
    return results;
  }
}
