// virtio-net's back-end on a tap: frames in and out of the tap fd, and a libuv watch on it that is
// on only while the device wants frames and the VM runs. While it is off, frames wait in the
// tap's kernel queue (txqueuelen), which is how none is lost during a hot swap's pause.

import type { NetBackend } from '../devices/virtio/net/queue-handler.js';
import { native, type FdWatchHandle } from '../sys/native.js';
import { type Tap, TapError } from '../sys/tap.js';

export class TapBackend implements NetBackend {
  private wanted = false;
  private enabled = false;
  private watch: FdWatchHandle | undefined;

  constructor(private readonly tap: Tap, private readonly onReadable: () => void) {}

  read(buf: Uint8Array): number { return this.tap.read(buf); }

  write(frame: Uint8Array): boolean {
    try {
      return this.tap.write(frame);
    } catch (e) {
      // A tap whose link is down refuses frames (EIO): a NIC with no carrier drops them too.
      if (e instanceof TapError && e.code === 'ERR_TAP_DOWN') return false;
      throw e;
    }
  }

  setReadInterest(on: boolean): void {
    this.wanted = on;
    this.sync();
  }

  /** Whether the VM runs; frames are only taken from the tap while it does. */
  setEnabled(on: boolean): void {
    this.enabled = on;
    this.sync();
  }

  private sync(): void {
    const want = this.wanted && this.enabled;
    if (want && !this.watch) this.watch = native().fdWatch(this.tap.fd, () => this.onReadable());
    else if (!want && this.watch) {
      native().fdUnwatch(this.watch);
      this.watch = undefined;
    }
  }
}
