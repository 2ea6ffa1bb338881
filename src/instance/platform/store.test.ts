// The stored record: the first start probes and writes, later starts load without probing, and
// a damaged file is an error that leaves the file in place.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { PlatformRecordError } from './errors.js';
import { buildFakeSysfs } from './fake-sysfs.js';
import { type ProbeOptions, probePlatform } from './probe.js';
import type { PlatformRecord } from './record.js';
import { PLATFORM_RECORD_FILE, loadOrCaptureRecord } from './store.js';

describe('loadOrCaptureRecord', () => {
  let stateDir: string;
  let fake: { root: string; cleanup: () => void };
  let probes: number;
  const countingProbe = (o: ProbeOptions): PlatformRecord => {
    probes++;
    return probePlatform(o);
  };

  beforeEach(() => {
    stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'swapvisor-store-')), 'state');
    fake = buildFakeSysfs();
    probes = 0;
  });
  afterEach(() => {
    rmSync(path.dirname(stateDir), { recursive: true, force: true });
    fake.cleanup();
  });

  it('captures on the first call and loads on the second without probing', () => {
    const opts = { sysfsRoot: fake.root, kvmDevice: '/nonexistent/kvm', probe: countingProbe };
    const first = loadOrCaptureRecord(stateDir, opts);
    assert.equal(first.captured, true);
    assert.equal(probes, 1);
    const file = path.join(stateDir, PLATFORM_RECORD_FILE);
    assert.equal(first.path, file);
    const mtime = statSync(file).mtimeMs;
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(stateDir), [PLATFORM_RECORD_FILE], 'no temp file left behind');

    const second = loadOrCaptureRecord(stateDir, opts);
    assert.equal(second.captured, false);
    assert.equal(probes, 1, 'the second start did not probe');
    assert.equal(statSync(file).mtimeMs, mtime, 'the file was not rewritten');
    assert.deepStrictEqual(second.record, first.record);
  });

  it('refuses a corrupt record, says to remove it, and leaves it untouched', () => {
    loadOrCaptureRecord(stateDir, { sysfsRoot: fake.root, kvmDevice: '/nonexistent/kvm', probe: countingProbe });
    const file = path.join(stateDir, PLATFORM_RECORD_FILE);
    const bytes = readFileSync(file);
    bytes[bytes.length - 5] ^= 0x40;
    writeFileSync(file, bytes);
    let caught: unknown;
    try {
      loadOrCaptureRecord(stateDir, { probe: countingProbe });
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof PlatformRecordError);
    assert.equal(caught.code, 'ERR_PLATFORM_RECORD_CORRUPT');
    assert.match(caught.message, /checksum mismatch/);
    assert.match(caught.message, new RegExp(`rm ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal((caught.cause as { code?: string }).code, 'ERR_STATE_CHECKSUM');
    assert.equal(probes, 1, 'no re-probe');
    assert.deepEqual(readFileSync(file), bytes, 'the damaged file is left for the user');
  });

  it('refuses a truncated or foreign file the same way', () => {
    const file = path.join(stateDir, PLATFORM_RECORD_FILE);
    loadOrCaptureRecord(stateDir, { sysfsRoot: fake.root, kvmDevice: '/nonexistent/kvm' });
    writeFileSync(file, readFileSync(file).subarray(0, 40));
    assert.throws(() => loadOrCaptureRecord(stateDir), (e: unknown) => e instanceof PlatformRecordError && e.code === 'ERR_PLATFORM_RECORD_CORRUPT' && /truncated/.test(e.message));
    writeFileSync(file, '{"not":"a record"}\n');
    assert.throws(() => loadOrCaptureRecord(stateDir), (e: unknown) => e instanceof PlatformRecordError && /not swapvisor state/.test(e.message));
  });
});
