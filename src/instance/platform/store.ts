// Where the platform record lives between instances: <stateDir>/platform.rec. The first start on a
// machine probes and writes it atomically; later starts (including the new instance of a hot swap)
// load it instead of probing again. A damaged record is an error, never silently replaced.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PlatformRecordError } from './errors.js';
import { type ProbeOptions, probePlatform } from './probe.js';
import { type PlatformRecord, decodePlatformRecord, encodePlatformRecord } from './record.js';

export const PLATFORM_RECORD_FILE = 'platform.rec';

/** A platform record never legitimately gets near this; bigger files are refused unread. */
export const MAX_PLATFORM_RECORD_BYTES = 8 * 1024 * 1024;

export interface LoadOrCaptureOptions extends ProbeOptions {
  /** The probe to run on a first start; probePlatform by default (tests count calls through this). */
  probe?: (opts: ProbeOptions) => PlatformRecord;
}

export interface LoadedRecord {
  record: PlatformRecord;
  /** true if this call probed the machine and wrote the file, false if it loaded an existing one. */
  captured: boolean;
  path: string;
}

function writeAtomically(file: string, bytes: Uint8Array): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  // Ordering requirements: data fsync'ed before the rename, the directory fsync'ed after it, so a
  // crash leaves either no record or a whole one, never a torn file under the real name.
  const fd = openSync(tmp, 'w', 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

function readExisting(file: string): Uint8Array | null {
  try {
    return readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PlatformRecordError('ERR_PLATFORM_RECORD_UNREADABLE', `cannot read the platform record ${file}: ${(e as Error).message}; fix its permissions or remove it to capture the platform again`, { cause: e });
  }
}

/** Loads <stateDir>/platform.rec, or probes the machine and writes it if there is none yet. */
export function loadOrCaptureRecord(stateDir: string, opts: LoadOrCaptureOptions = {}): LoadedRecord {
  const file = path.join(stateDir, PLATFORM_RECORD_FILE);
  const existing = readExisting(file);
  if (existing) {
    try {
      return { record: decodePlatformRecord(existing, MAX_PLATFORM_RECORD_BYTES), captured: false, path: file };
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new PlatformRecordError('ERR_PLATFORM_RECORD_CORRUPT', `the platform record ${file} cannot be used: ${why}. It was left untouched; remove it (rm ${file}) to probe the platform again on the next start`, { cause: e });
    }
  }
  const { probe = probePlatform, ...probeOpts } = opts;
  const record = probe(probeOpts);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeAtomically(file, encodePlatformRecord(record));
  } catch (e) {
    throw new PlatformRecordError('ERR_PLATFORM_RECORD_WRITE', `cannot write the platform record ${file}: ${(e as Error).message}; check that the state directory is writable`, { cause: e });
  }
  return { record, captured: true, path: file };
}
