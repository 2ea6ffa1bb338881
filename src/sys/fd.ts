// An owned file descriptor that is closed exactly once. Everything in sys/ that opens an fd
// keeps it in one of these so that cleanup paths can call close() without double-closing.

import { native } from './native.js';

export class OwnedFd {
  private value: number;

  constructor(fd: number) {
    this.value = fd;
  }

  get fd(): number {
    if (this.value < 0) throw new Error('file descriptor used after close');
    return this.value;
  }

  get closed(): boolean {
    return this.value < 0;
  }

  close(): void {
    if (this.value >= 0) {
      const fd = this.value;
      this.value = -1;
      native().close(fd);
    }
  }

  /**
   * Closes on a libuv pool thread at a low priority, for fds whose last close is slow (a VM's:
   * destroying it takes ~15 ms of kernel time here); resolves once closed.
   */
  closeAsync(): Promise<void> {
    return this.closeAsyncAfter(Promise.resolve());
  }

  /** As closeAsync(), once `first` has settled; the fd counts as closed from now on. */
  closeAsyncAfter(first: Promise<unknown>): Promise<void> {
    if (this.value < 0) return Promise.resolve();
    const fd = this.value;
    this.value = -1;
    return first.then(() => new Promise<void>((resolve) => native().closeAsync(fd, () => resolve())));
  }
}
