// The swap journal: entries land in the order they were written, awaited or not; a failed append
// fails every later one; torn lines are skipped on reading.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { JOURNAL_FILE, SwapJournal, readJournal } from './journal.js';

function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-journal-'));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('SwapJournal', () => {
  it('keeps the written order across awaited and unawaited appends', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom('await', 'note'), { minLength: 1, maxLength: 30 }), (kinds) => withDir(async (dir) => {
      const j = new SwapJournal(dir, 'swap-1');
      try {
        j.note('swap.begin');
        for (const [i, kind] of kinds.entries()) {
          if (kind === 'await') await j.write(`s${i}`);
          else j.note(`s${i}`);
        }
        await j.write('swap.done'); // resolves after every entry queued before it
        assert.deepEqual(readJournal(dir).map((e) => e.step), ['swap.begin', ...kinds.map((_, i) => `s${i}`), 'swap.done']);
      } finally {
        j.close();
      }
    })), { numRuns: 40 });
  });

  it('fails every append after one that failed, and says why', async () => {
    await withDir(async (dir) => {
      const j = new SwapJournal(dir, 'swap-2');
      await j.write('swap.begin');
      j.close(); // the fd is gone: the next append fails with EBADF
      await assert.rejects(j.write('phase.partition'), /cannot write the swap journal/);
      await assert.rejects(j.write('phase.launch'), /cannot write the swap journal/);
      j.note('vm.sending'); // does not throw: the failure stays for the next write
      await assert.rejects(j.write('vm.moved'), /cannot write the swap journal/);
    });
  });

  it('reads back the last swap, skipping a torn last line', async () => {
    await withDir(async (dir) => {
      for (const id of ['swap-a', 'swap-b']) {
        const j = new SwapJournal(dir, id);
        await j.write('swap.begin', { to: '/x' });
        await j.write('swap.done');
        j.close();
      }
      appendFileSync(path.join(dir, JOURNAL_FILE), '{"ns":"1","step":"torn');
      assert.deepEqual(readJournal(dir).map((e) => [e.swap, e.step]), [['swap-b', 'swap.begin'], ['swap-b', 'swap.done']]);
      assert.deepEqual(readJournal(dir, 'swap-a').map((e) => e.step), ['swap.begin', 'swap.done']);
    });
  });
});
