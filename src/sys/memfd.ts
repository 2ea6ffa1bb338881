// Guest RAM backing: a memfd, sized with ftruncate and mapped shared (optionally pre-faulted
// with MAP_POPULATE). The fd is what a hot swap hands to the next instance; nothing is copied.

import { OwnedFd } from './fd.js';
import { MAP_POPULATE, MAP_SHARED, PROT_READ, PROT_WRITE, native } from './native.js';

/** One mapping is at most 4 GiB (an ArrayBuffer's limit here); larger RAM uses several. */
export const MAX_MAPPING_BYTES = 4 * 1024 * 1024 * 1024;

export interface MemfdMapping {
  readonly offset: number;
  readonly size: number;
  readonly buffer: ArrayBuffer;
  readonly address: bigint;
}

export class Memfd {
  private readonly owned: OwnedFd;
  private mappings: MemfdMapping[] = [];

  private constructor(fd: number, readonly size: number) {
    this.owned = new OwnedFd(fd);
  }

  static create(name: string, size: number): Memfd {
    const fd = native().memfdCreate(name, 0);
    const m = new Memfd(fd, size);
    try {
      native().ftruncate(fd, size);
    } catch (e) {
      m.close();
      throw e;
    }
    return m;
  }

  /** Adopts an fd received from elsewhere (for example over SCM_RIGHTS). */
  static fromFd(fd: number, size: number): Memfd {
    return new Memfd(fd, size);
  }

  get fd(): number { return this.owned.fd; }

  map(offset: number, size: number, opts: { populate: boolean }): MemfdMapping {
    if (size > MAX_MAPPING_BYTES || offset + size > this.size) throw new RangeError('mapping outside the memfd');
    const flags = MAP_SHARED | (opts.populate ? MAP_POPULATE : 0);
    const { buffer, address } = native().mmap(this.fd, size, PROT_READ | PROT_WRITE, flags, offset);
    const m = { offset, size, buffer, address };
    this.mappings.push(m);
    return m;
  }

  close(): void {
    for (const m of this.mappings) native().munmap(m.buffer);
    this.mappings = [];
    this.owned.close();
  }
}
