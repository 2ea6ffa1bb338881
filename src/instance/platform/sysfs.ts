// Small readers for sysfs/procfs files under a root directory, so probing can run against the real
// machine ("/") or a fake tree in tests. Failures become Probed absences with a reason such as
// "ENOENT: /sys/firmware/dmi/tables/DMI": the path shown is the machine path, not the root.

import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Probed } from './record.js';

export class SysfsRoot {
  constructor(readonly root: string) {}

  abs(p: string): string {
    return path.join(this.root, p);
  }

  static reason(e: unknown, p: string): string {
    const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : 'ERROR';
    return `${code}: ${p}`;
  }

  /** Up to `maxBytes` of a file; a larger file is absent with a reason rather than cut short. */
  bytes(p: string, maxBytes: number): Probed<Uint8Array> {
    let fd: number;
    try {
      fd = openSync(this.abs(p), 'r');
    } catch (e) {
      return { present: false, reason: SysfsRoot.reason(e, p) };
    }
    try {
      // sysfs sizes are not always real (many report 4096), so read until EOF, one byte past the cap.
      const buf = new Uint8Array(maxBytes + 1);
      let n = 0;
      for (;;) {
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) break;
        n += got;
        if (n > maxBytes) return { present: false, reason: `E2BIG: ${p} is larger than the ${maxBytes}-byte cap` };
      }
      return { present: true, value: buf.slice(0, n) };
    } catch (e) {
      return { present: false, reason: SysfsRoot.reason(e, p) };
    } finally {
      closeSync(fd);
    }
  }

  /** A text file, trimmed of its trailing newline. */
  text(p: string, maxBytes = 1 << 20): Probed<string> {
    const b = this.bytes(p, maxBytes);
    if (!b.present) return b;
    return { present: true, value: Buffer.from(b.value).toString('utf8').replace(/\n+$/, '') };
  }

  textOrNull(p: string): string | null {
    const t = this.text(p);
    return t.present ? t.value.trim() : null;
  }

  intOrNull(p: string): number | null {
    const t = this.textOrNull(p);
    if (t === null || !/^-?\d+$/.test(t)) return null;
    return Number(t);
  }

  list(p: string): Probed<string[]> {
    try {
      return { present: true, value: readdirSync(this.abs(p)) };
    } catch (e) {
      return { present: false, reason: SysfsRoot.reason(e, p) };
    }
  }

  exists(p: string): boolean {
    try {
      statSync(this.abs(p));
      return true;
    } catch {
      return false;
    }
  }

  isDirectory(p: string): boolean {
    try {
      return statSync(this.abs(p)).isDirectory();
    } catch {
      return false;
    }
  }

  size(p: string): number {
    return statSync(this.abs(p)).size;
  }
}

/** Entries named `<prefix><n>` in numeric order, e.g. cpu0..cpu15, node0.. */
export function numbered(names: readonly string[], prefix: string): number[] {
  const re = new RegExp(`^${prefix}(\\d+)$`);
  return names.flatMap((n) => {
    const m = re.exec(n);
    return m ? [Number(m[1])] : [];
  }).sort((a, b) => a - b);
}
