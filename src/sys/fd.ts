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
}
