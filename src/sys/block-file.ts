// A disk image for a virtio block device: a regular file or a block device, read and written at byte
// offsets with pread/pwrite, flushed with fdatasync, discarded by punching holes. It knows nothing of
// sectors, requests or queues; callers check offsets against the guest's view of the disk.

import { fstatSync, statSync, type Stats } from 'node:fs';
import { OwnedFd } from './fd.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, O_RDONLY, O_RDWR, isNativeError, native } from './native.js';

/** Disk images are whole 512-byte sectors, the unit of the virtio block capacity field. */
export const BLOCK_FILE_SECTOR_BYTES = 512;
/** The largest single zero-filling write when a discard has to fall back to writing zeros. */
const ZERO_CHUNK_BYTES = 1024 * 1024;

export type BlockFileErrorCode =
  | 'ERR_BLOCK_FILE_NOT_FOUND' | 'ERR_BLOCK_FILE_PERMISSION' | 'ERR_BLOCK_FILE_TYPE' | 'ERR_BLOCK_FILE_SIZE'
  | 'ERR_BLOCK_FILE_READ_ONLY' | 'ERR_BLOCK_FILE_IO';

export class BlockFileError extends Error {
  override readonly name = 'BlockFileError';

  constructor(readonly code: BlockFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface BlockFileOpenOptions {
  readOnly: boolean;
}

function checkKind(st: Stats, what: string): void {
  if (st.isFile() || st.isBlockDevice()) return;
  const kind = st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a character device' : st.isFIFO() ? 'a FIFO'
    : st.isSocket() ? 'a socket' : 'not a regular file';
  throw new BlockFileError('ERR_BLOCK_FILE_TYPE', `${what} is ${kind}: a disk image must be a regular file or a block device`);
}

function checkSize(sizeBytes: number, what: string): void {
  if (sizeBytes % BLOCK_FILE_SECTOR_BYTES === 0) return;
  const up = Math.ceil(sizeBytes / BLOCK_FILE_SECTOR_BYTES) * BLOCK_FILE_SECTOR_BYTES;
  throw new BlockFileError('ERR_BLOCK_FILE_SIZE',
    `${what} is ${sizeBytes} bytes, not a multiple of ${BLOCK_FILE_SECTOR_BYTES}: pad it (for example \`truncate -s ${up} ${what}\`)`);
}

function checkOffset(offset: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`${what} ${offset} is not a non-negative safe integer`);
}

export class BlockFile {
  private readonly owned: OwnedFd;

  private constructor(fd: number, readonly sizeBytes: number, readonly readOnly: boolean, private readonly label: string) {
    this.owned = new OwnedFd(fd);
  }

  /**
   * Opens a disk image (O_RDWR, or O_RDONLY when readOnly; always O_CLOEXEC). Throws a BlockFileError
   * when the path is missing or not accessible, is not a regular file or block device, or its size is not
   * a whole number of 512-byte sectors.
   */
  static open(path: string, opts: BlockFileOpenOptions): BlockFile {
    // Stat the path before opening: opening a FIFO would block until a writer came.
    let st: Stats;
    try {
      st = statSync(path);
    } catch (e) {
      throw openError(e, path, opts.readOnly);
    }
    checkKind(st, path);
    let fd: number;
    try {
      fd = native().open(path, opts.readOnly ? O_RDONLY : O_RDWR);
    } catch (e) {
      throw openError(e, path, opts.readOnly);
    }
    try {
      return BlockFile.adopt(fd, opts.readOnly, path);
    } catch (e) {
      native().close(fd);
      throw e;
    }
  }

  /**
   * Adopts an open fd, for example one received over SCM_RIGHTS. It is checked like a path; on a
   * BlockFileError the fd stays the caller's to close.
   */
  static fromFd(fd: number, readOnly: boolean): BlockFile {
    return BlockFile.adopt(fd, readOnly, `fd ${fd}`);
  }

  private static adopt(fd: number, readOnly: boolean, label: string): BlockFile {
    checkKind(fstatSync(fd), label);
    const sizeBytes = native().fstatSize(fd);
    checkSize(sizeBytes, label);
    return new BlockFile(fd, sizeBytes, readOnly, label);
  }

  get fd(): number { return this.owned.fd; }

  /** Fills buf from the byte offset; short reads are retried, and bytes beyond the end of the file read as zeros. */
  read(buf: Uint8Array, offset: number): void {
    checkOffset(offset, 'read offset');
    const n = native();
    let done = 0;
    while (done < buf.byteLength) {
      const got = this.io(() => n.pread(this.fd, buf.subarray(done), offset + done), 'read', offset + done);
      if (got === 0) break; // end of file
      done += got;
    }
    buf.fill(0, done);
  }

  /** Writes all of buf at the byte offset (within sizeBytes); short writes are retried. */
  write(buf: Uint8Array, offset: number): void {
    this.checkWritable('write', offset, buf.byteLength);
    const n = native();
    let done = 0;
    while (done < buf.byteLength) {
      const put = this.io(() => n.pwrite(this.fd, buf.subarray(done), offset + done), 'write', offset + done);
      if (put === 0) throw new BlockFileError('ERR_BLOCK_FILE_IO', `${this.label}: write at byte ${offset + done} made no progress`);
      done += put;
    }
  }

  /** Makes written data durable (fdatasync). */
  flush(): void {
    try {
      native().fdatasync(this.fd);
    } catch (e) {
      throw new BlockFileError('ERR_BLOCK_FILE_IO', `${this.label}: flush failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Drops [offset, offset+length): punches a hole (the size stays), so the range reads as zeros and may
   * give its space back. Where holes are not supported it writes zeros instead.
   */
  discard(offset: number, length: number): void {
    this.checkWritable('discard', offset, length);
    if (length === 0) return;
    try {
      native().fallocate(this.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    } catch (e) {
      if (isNativeError(e) && (e.code === 'EOPNOTSUPP' || e.code === 'ENODEV')) {
        this.writeZeroes(offset, length);
        return;
      }
      throw new BlockFileError('ERR_BLOCK_FILE_IO', `${this.label}: discard at byte ${offset} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Writes zeros over [offset, offset+length), allocating the range (unlike discard). */
  writeZeroes(offset: number, length: number): void {
    this.checkWritable('writeZeroes', offset, length);
    const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK_BYTES));
    for (let done = 0; done < length; done += zeros.byteLength) {
      this.write(zeros.subarray(0, Math.min(zeros.byteLength, length - done)), offset + done);
    }
  }

  close(): void {
    this.owned.close();
  }

  private checkWritable(op: string, offset: number, length: number): void {
    if (this.readOnly) throw new BlockFileError('ERR_BLOCK_FILE_READ_ONLY', `${this.label} is open read-only: ${op} refused; open it with readOnly: false to change it`);
    checkOffset(offset, `${op} offset`);
    checkOffset(length, `${op} length`);
    if (offset + length > this.sizeBytes) {
      throw new RangeError(`${op} of ${length} bytes at ${offset} goes past the end of ${this.label} (${this.sizeBytes} bytes)`);
    }
  }

  private io(call: () => number, op: string, at: number): number {
    let r: number;
    try {
      r = call();
    } catch (e) {
      throw new BlockFileError('ERR_BLOCK_FILE_IO', `${this.label}: ${op} at byte ${at} failed: ${(e as Error).message}`, { cause: e });
    }
    // A disk image fd is blocking; EAGAIN here means someone handed over a nonblocking fd to a pipe-like file.
    if (r < 0) throw new BlockFileError('ERR_BLOCK_FILE_IO', `${this.label}: ${op} at byte ${at} would block (EAGAIN)`);
    return r;
  }
}

function openError(e: unknown, path: string, readOnly: boolean): Error {
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new BlockFileError('ERR_BLOCK_FILE_NOT_FOUND', `disk image ${path} does not exist: check the path, or create it (for example \`truncate -s 1G ${path}\`)`, { cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    const hint = readOnly ? 'give this user read access' : 'give this user read-write access, or open it read-only';
    return new BlockFileError('ERR_BLOCK_FILE_PERMISSION', `disk image ${path} cannot be opened ${readOnly ? 'read-only' : 'read-write'} (${String(code)}): ${hint}`, { cause: e });
  }
  if (code === 'EISDIR') return new BlockFileError('ERR_BLOCK_FILE_TYPE', `${path} is a directory: a disk image must be a regular file or a block device`, { cause: e });
  return new BlockFileError('ERR_BLOCK_FILE_IO', `disk image ${path} cannot be opened: ${(e as Error).message}`, { cause: e });
}
