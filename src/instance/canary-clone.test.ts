// The canary's verdict on a clone's console and exit: a crash or a bad exit fails it, a given pattern
// must appear, and otherwise the clone's heartbeats must go on in order.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { judgeCanary } from './canary-clone.js';

const beats = (seqs: number[]): string => seqs.map((s) => `hb ${s} 1000 12\n`).join('');

describe('judgeCanary', () => {
  it('passes heartbeats in order and fails any that skip', () => {
    fc.assert(fc.property(fc.nat(1_000_000), fc.integer({ min: 1, max: 50 }), fc.option(fc.integer({ min: 1, max: 49 }), { nil: undefined }), (start, n, holeAt) => {
      const seqs = Array.from({ length: n }, (_, i) => start + i + (holeAt !== undefined && i >= holeAt ? 1 : 0));
      const [ok, detail] = judgeCanary(`heartbeat start period_us=1000 tsc_khz=1\n${beats(seqs)}`, undefined, undefined);
      assert.equal(ok, holeAt === undefined || holeAt >= n, detail);
    }));
  });

  it('fails a clone that crashed, exited badly or printed nothing, whatever it printed', () => {
    assert.equal(judgeCanary(beats([1, 2, 3]), { reason: 'fault', fault: { kind: 'shutdown', rip: 0x1000n, detail: 'triple fault' } } as never, undefined)[0], false);
    assert.equal(judgeCanary(beats([1, 2, 3]), { reason: 'guest-exit', status: 3 } as never, undefined)[0], false);
    assert.match(judgeCanary('', undefined, undefined)[1], /no heartbeat; give a --canary-pattern/);
  });

  it('with a pattern, passes only if the console matches it', () => {
    assert.equal(judgeCanary('booting\nready: 42\n', undefined, /^ready: \d+$/m)[0], true);
    assert.equal(judgeCanary('booting\n', undefined, /^ready/m)[0], false);
    // Malformed lines do not count as heartbeats, and do not throw.
    assert.equal(judgeCanary('hb x y z\nhb 1\n\u0000\u00ff', undefined, undefined)[0], false);
  });
});
