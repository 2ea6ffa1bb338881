// Crash-safe file replacement, synchronous and on the thread pool: the target holds exactly the new
// bytes, no temp file stays behind, and a write that cannot happen fails without touching the target.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { writeFileAtomic, writeFileAtomicAsync } from './atomic-file.js';

const withDir = async (f: (dir: string) => Promise<void> | void): Promise<void> => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-atomic-'));
  try { await f(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
};

for (const [name, write] of [['writeFileAtomic', async (f: string, d: string | Uint8Array) => writeFileAtomic(f, d)], ['writeFileAtomicAsync', writeFileAtomicAsync]] as const) {
  describe(name, () => {
    it('replaces the target with exactly the new bytes, mode 0600, no temp file left', async () => {
      await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 4096 }), (first, second) => withDir(async (dir) => {
        const file = path.join(dir, 'x.json');
        await write(file, first);
        await write(file, second);
        assert.deepEqual(new Uint8Array(readFileSync(file)), second);
        assert.equal(statSync(file).mode & 0o777, 0o600);
        assert.deepEqual(readdirSync(dir), ['x.json']);
      })), { numRuns: 25 });
    });

    it('fails in a directory that does not exist, and leaves an existing target alone', async () => {
      await withDir(async (dir) => {
        const file = path.join(dir, 'keep.json');
        writeFileSync(file, 'old');
        await assert.rejects(async () => write(path.join(dir, 'missing', 'x.json'), 'new'), /ENOENT/);
        assert.equal(readFileSync(file, 'utf8'), 'old');
        assert.deepEqual(readdirSync(dir), ['keep.json']);
      });
    });
  });
}

describe('writeFileAtomicAsync input', () => {
  it('refuses a path too long for the kernel with one clear error, and writes nothing', async () => {
    await assert.rejects(async () => writeFileAtomicAsync(path.join(os.tmpdir(), 'x'.repeat(5000)), 'data'), /replaceFileAsync\(path, tmpPath/);
  });
});
