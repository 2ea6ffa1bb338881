// The typed face of the native addon (native/src/*.c). Only sys/ imports this module.
// Every function maps to one syscall (or one vCPU thread primitive) and throws a
// NativeError carrying the syscall name and errno on failure.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface NativeError extends Error {
  code: string;
  syscall: string;
  errno: number;
}

/** An opaque handle to a libuv poll on an fd. */
export type FdWatchHandle = { readonly __fdWatch: unique symbol };

/** An opaque handle to a VM's native console output queue (native/src/pio_queue.c). */
export type PioQueueHandle = { readonly __pioQueue: unique symbol };

/** An opaque handle to a native vCPU thread. */
export type VcpuThreadHandle = { readonly __vcpuThread: unique symbol };

export interface NativeAddon {
  open(path: string, flags: number): number;
  close(fd: number): void;
  closeAsync(fd: number, done: (errno: number) => void): void;
  /** Writes `data` to tmpPath, fsyncs it, renames it over path and fsyncs the directory, on a pool thread. */
  replaceFileAsync(path: string, tmpPath: string, data: Uint8Array, mode: number, done: (errno: number) => void): void;
  ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint): number;
  ioctlAsync(fd: number, request: number, arg: Uint8Array, done: (errno: number) => void): void;
  ioctlBatch(fds: Int32Array, requests: Uint32Array, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, results: Int32Array): number;
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  /** pread(2) at a byte offset (any safe integer): bytes read, 0 at end of file, -1 on EAGAIN. */
  pread(fd: number, buf: Uint8Array, offset: number): number;
  /** pwrite(2) at a byte offset (any safe integer): bytes written, -1 on EAGAIN. */
  pwrite(fd: number, buf: Uint8Array, offset: number): number;
  fdatasync(fd: number): void;
  /** fallocate(2); mode is FALLOC_FL_* as given. */
  fallocate(fd: number, mode: number, offset: number, len: number): void;
  /** fstat(2)'s st_size, or for a block device its size from BLKGETSIZE64. */
  fstatSize(fd: number): number;
  /** Opens /dev/net/tun (O_RDWR|O_NONBLOCK|O_CLOEXEC) and attaches it with TUNSETIFF (ifr_flags as given). */
  openTap(name: string, ifrFlags: number): { fd: number; name: string };
  eventfd(initval: number, flags: number): number;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, size: number): void;
  schedSetaffinity(tid: number, cpus: number[]): void;
  schedSetFair(tid: number, nice: number, sliceNs: number): void;
  schedYield(): void;
  schedGetSlice(tid: number): number;
  schedGetaffinity(tid: number): number[];
  gettid(): number;
  flock(fd: number, op: number): boolean;
  mmap(fd: number, length: number, prot: number, flags: number, offset: number): { buffer: ArrayBuffer; address: bigint };
  munmap(buffer: ArrayBuffer): void;
  munmapAsync(buffer: ArrayBuffer, done: (errno: number) => void): void;
  madvise(buffer: ArrayBuffer | Uint8Array, offset: number, length: number, advice: number): void;
  populateAsync(buffer: ArrayBuffer, offset: number, length: number, done: (errno: number) => void): void;
  socketpair(type: number): [number, number];
  unixListen(path: string, backlog: number): number;
  sendmsg(fd: number, data: Uint8Array, fds: number[]): number;
  recvmsg(fd: number, buf: Uint8Array): { bytes: number; fds: number[]; truncated: boolean };
  /** poll(2) for POLLOUT: true once fd is writable (or errored), false on timeout. Blocks the thread. */
  waitWritable(fd: number, timeoutMs: number): boolean;
  fdWatch(fd: number, onReadable: (status: number) => void): FdWatchHandle;
  fdUnwatch(handle: FdWatchHandle): void;
  vcpuThreadCreate(vcpuFd: number, onExit: (code: number) => void): VcpuThreadHandle;
  vcpuThreadRun(handle: VcpuThreadHandle): void;
  vcpuThreadKick(handle: VcpuThreadHandle): void;
  vcpuThreadTid(handle: VcpuThreadHandle): number;
  vcpuThreadDestroy(handle: VcpuThreadHandle): void;
  vcpuThreadSetFastPioIn(handle: VcpuThreadHandle, run: Uint8Array, port: number, value: Int32Array): void;
  vcpuThreadFastExits(handle: VcpuThreadHandle): number;
  vcpuThreadSetPioQueue(handle: VcpuThreadHandle, queue: PioQueueHandle): void;
  pioQueueCreate(ringPage: Uint8Array, port: number, capacity: number, queued: Int32Array): PioQueueHandle;
  pioQueueTake(queue: PioQueueHandle): Uint8Array;
  pioQueueStats(queue: PioQueueHandle): [queued: number, skipped: number];
  pioQueueClose(queue: PioQueueHandle): void;
  crc32c(buf: Uint8Array, crc: number): number;
}

export class NativeAddonMissingError extends Error {
  readonly code = 'ERR_NATIVE_ADDON_MISSING';
}

function locateAddon(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'native', 'build', 'Release', 'swapvisor_native.node');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new NativeAddonMissingError('the native addon is not built: run `npm run build:native` (or the README set-up command)');
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    addon = require(locateAddon()) as NativeAddon;
  }
  return addon;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number' && typeof (e as Partial<NativeError>).syscall === 'string';
}

// Constants from <fcntl.h>, <sys/mman.h>, <sys/socket.h>, <sys/eventfd.h>, <linux/memfd.h>, <sys/file.h>.
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_POPULATE = 0x8000;
export const MAP_NORESERVE = 0x4000;
export const MADV_DONTNEED = 4;
export const MADV_POPULATE_WRITE = 23;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const EFD_NONBLOCK = 0o4000;
export const MFD_ALLOW_SEALING = 2;
export const O_CREAT = 0o100;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
// <linux/falloc.h>
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
// <linux/if_tun.h>, <linux/if.h>
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const IFNAMSIZ = 16;
/** _IOW('T', 216, int): the size of the virtio-net header in front of each frame (10 or 12 bytes). */
export const TUNSETVNETHDRSZ = 0x400454d8;
