// An exclusive advisory lock on a file (flock), held for the life of the process. The kernel drops
// it when the process dies, even by SIGKILL, so a crashed owner never leaves a stale lock behind.

import { OwnedFd } from './fd.js';
import { LOCK_EX, LOCK_NB, O_CREAT, O_RDWR, native } from './native.js';

export class FileLock {
  private constructor(private readonly owned: OwnedFd, readonly path: string) {}

  /** Takes the lock, or returns undefined if another process holds it. */
  static tryAcquire(path: string): FileLock | undefined {
    const fd = native().open(path, O_RDWR | O_CREAT);
    const owned = new OwnedFd(fd);
    if (!native().flock(fd, LOCK_EX | LOCK_NB)) {
      owned.close();
      return undefined;
    }
    return new FileLock(owned, path);
  }

  /** Wraps a lock fd received from another process (the flock travels with the open file). */
  static fromFd(fd: number, path: string): FileLock {
    return new FileLock(new OwnedFd(fd), path);
  }

  get fd(): number {
    return this.owned.fd;
  }

  release(): void {
    this.owned.close();
  }
}
