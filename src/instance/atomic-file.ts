// Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it over
// the target, fsync the directory. After a crash the target holds either the old or the new bytes.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { native } from '../sys/native.js';
import path from 'node:path';

export function writeFileAtomic(file: string, data: Uint8Array | string, mode = 0o600): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    try { closeSync(fd); } catch { /* already closed on the error path */ }
  }
  renameSync(tmp, file);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/**
 * writeFileAtomic on a pool thread, in one native call (write, fsync, rename, fsync of the directory):
 * for writes a VM's thread should not wait on. Resolves once the new bytes are durable. Callers
 * serialize their writes to one file (they share its temp file name).
 */
export function writeFileAtomicAsync(file: string, data: Uint8Array | string, mode = 0o600): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return new Promise((resolve, reject) => native().replaceFileAsync(file, tmp, bytes, mode, (errno) => {
    if (errno === 0) return resolve();
    const code = Object.entries(constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
    reject(Object.assign(new Error(`${code}: cannot write ${file}`), { code, errno, syscall: 'replaceFile' }));
  }));
}
