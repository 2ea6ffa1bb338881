// A tap network interface: an fd on /dev/net/tun that reads and writes whole Ethernet frames
// (IFF_TAP | IFF_NO_PI, optionally with a virtio-net header in front, IFF_VNET_HDR). It never blocks and
// holds no policy about addresses, bridges or offloads. Reference: Documentation/networking/tuntap.rst.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { OwnedFd } from './fd.js';
import { IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, IFNAMSIZ, TUNSETVNETHDRSZ, isNativeError, native } from './native.js';

export const TUN_DEVICE_PATH = '/dev/net/tun';
/** Where `ip netns add` puts its named network namespaces. */
export const NETNS_RUN_DIR = '/run/netns';

export type TapErrorCode =
  | 'ERR_TAP_NO_TUN_DEVICE' | 'ERR_TAP_NAME' | 'ERR_TAP_PERMISSION' | 'ERR_TAP_BUSY' | 'ERR_TAP_NETNS' | 'ERR_TAP_DOWN' | 'ERR_TAP_IO';

export class TapError extends Error {
  override readonly name = 'TapError';

  constructor(readonly code: TapErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface TapOpenOptions {
  /** Each frame read or written starts with a virtio-net header (10 bytes unless setVnetHdrSize says otherwise). */
  vnetHdr?: boolean;
  /** Moves the interface into this named network namespace (`ip netns`); the fd keeps working. */
  netns?: string;
}

/**
 * Checks a Linux interface name the way the kernel does (dev_valid_name), plus the "%d" template rule:
 * 1 to 15 bytes, not "." or "..", no '/', ':' or whitespace, and at most one '%', as "%d".
 */
export function checkInterfaceName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  const bad = (why: string): never => {
    throw new TapError('ERR_TAP_NAME', `interface name ${JSON.stringify(name)} ${why}: use 1 to ${IFNAMSIZ - 1} bytes of letters, digits, '-', '_' or '.' (and "%d" for a number the kernel picks)`);
  };
  if (bytes === 0) bad('is empty');
  if (bytes > IFNAMSIZ - 1) bad(`is ${bytes} bytes, over the kernel's ${IFNAMSIZ - 1}`);
  if (name === '.' || name === '..') bad('is reserved');
  if (/[/:\s\0]/u.test(name)) bad("contains '/', ':', a NUL or whitespace");
  const percents = name.split('%').length - 1;
  if (percents > 1 || (percents === 1 && !name.includes('%d'))) bad('has a \'%\' that is not a single "%d"');
}

export class Tap {
  private readonly owned: OwnedFd;

  private constructor(fd: number, readonly name: string) {
    this.owned = new OwnedFd(fd);
  }

  /**
   * Opens the tap `name`, creating it if it does not exist. It is not persistent: it disappears when the
   * last fd on it closes. With `netns` it is then moved into that namespace; on any failure the fd is closed.
   */
  static open(name: string, opts: TapOpenOptions = {}): Tap {
    checkInterfaceName(name);
    if (opts.netns !== undefined) checkNetns(opts.netns);
    const flags = IFF_TAP | IFF_NO_PI | (opts.vnetHdr ? IFF_VNET_HDR : 0);
    let opened: { fd: number; name: string };
    try {
      opened = native().openTap(name, flags);
    } catch (e) {
      throw openError(e, name);
    }
    const tap = new Tap(opened.fd, opened.name);
    if (opts.netns !== undefined) {
      try {
        moveToNetns(tap.name, opts.netns);
      } catch (e) {
        tap.close();
        throw e;
      }
    }
    return tap;
  }

  /** Adopts an fd already attached to a tap (for example received over SCM_RIGHTS in another process). */
  static fromFd(fd: number, name: string): Tap {
    return new Tap(fd, name);
  }

  get fd(): number { return this.owned.fd; }

  /** Reads one frame into buf: its length in bytes, or -1 when no frame is queued. A frame longer than buf is cut. */
  read(buf: Uint8Array): number {
    try {
      return native().read(this.fd, buf);
    } catch (e) {
      throw new TapError('ERR_TAP_IO', `reading tap ${this.name} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Writes one whole frame: true when it went in, false when the queue is full (EAGAIN; try again later).
   * While the interface is down the kernel refuses frames: that throws a TapError with code ERR_TAP_DOWN,
   * which a device model treats as a dropped frame.
   */
  write(frame: Uint8Array): boolean {
    let n: number;
    try {
      n = native().write(this.fd, frame);
    } catch (e) {
      if (isNativeError(e) && e.code === 'EIO') {
        throw new TapError('ERR_TAP_DOWN', `tap ${this.name} is down, so the frame was dropped: bring it up (\`ip link set dev ${this.name} up\`)`, { cause: e });
      }
      throw new TapError('ERR_TAP_IO', `writing a ${frame.byteLength}-byte frame to tap ${this.name} failed: ${(e as Error).message}`, { cause: e });
    }
    if (n < 0) return false;
    if (n !== frame.byteLength) throw new TapError('ERR_TAP_IO', `tap ${this.name} took ${n} of a ${frame.byteLength}-byte frame`);
    return true;
  }

  /** TUNSETVNETHDRSZ: the virtio-net header size with IFF_VNET_HDR (10, or 12 with VIRTIO_F_VERSION_1 / mergeable buffers). */
  setVnetHdrSize(bytes: number): void {
    const arg = new Uint8Array(4);
    new DataView(arg.buffer).setInt32(0, bytes, true);
    try {
      native().ioctl(this.fd, TUNSETVNETHDRSZ, arg);
    } catch (e) {
      throw new TapError('ERR_TAP_IO', `setting the virtio-net header size of tap ${this.name} to ${bytes} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  close(): void {
    this.owned.close();
  }
}

function checkNetns(netns: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(netns)) {
    throw new TapError('ERR_TAP_NETNS', `network namespace name ${JSON.stringify(netns)} is not a plain name: use letters, digits, '-', '_' or '.'`);
  }
  if (!existsSync(`${NETNS_RUN_DIR}/${netns}`)) {
    throw new TapError('ERR_TAP_NETNS', `network namespace ${netns} does not exist: create it first (\`ip netns add ${netns}\`)`);
  }
}

function moveToNetns(name: string, netns: string): void {
  try {
    execFileSync('ip', ['link', 'set', 'dev', name, 'netns', netns], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? '').trim();
    throw new TapError('ERR_TAP_NETNS', `moving tap ${name} into network namespace ${netns} failed${stderr ? `: ${stderr}` : ''}; check that the namespace exists and has no interface of that name`, { cause: e });
  }
}

function openError(e: unknown, name: string): Error {
  if (!isNativeError(e)) return e instanceof Error ? e : new Error(String(e));
  if (e.syscall === 'open') {
    if (e.code === 'ENOENT' || e.code === 'ENODEV' || e.code === 'ENXIO') {
      return new TapError('ERR_TAP_NO_TUN_DEVICE', `${TUN_DEVICE_PATH} is missing (${e.code}): load the tun module (\`modprobe tun\`) or, in a container, pass the device in (--device /dev/net/tun)`, { cause: e });
    }
    if (e.code === 'EACCES' || e.code === 'EPERM') {
      return new TapError('ERR_TAP_PERMISSION', `${TUN_DEVICE_PATH} cannot be opened (${e.code}): run as root or grant CAP_NET_ADMIN and access to the device`, { cause: e });
    }
    return new TapError('ERR_TAP_IO', `opening ${TUN_DEVICE_PATH} failed: ${e.message}`, { cause: e });
  }
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    return new TapError('ERR_TAP_PERMISSION', `creating tap ${name} needs CAP_NET_ADMIN (or a persistent tap owned by this user): ${e.message}`, { cause: e });
  }
  if (e.code === 'EBUSY') {
    return new TapError('ERR_TAP_BUSY', `tap ${name} is already open elsewhere: close the other user or pick another name`, { cause: e });
  }
  if (e.code === 'EINVAL') {
    return new TapError('ERR_TAP_NAME', `interface ${name} cannot be a tap here: the name is invalid, or taken by an interface that is not a tap (or by a tun)`, { cause: e });
  }
  return new TapError('ERR_TAP_IO', `attaching tap ${name} failed: ${e.message}`, { cause: e });
}
