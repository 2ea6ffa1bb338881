// The host-floor summary: cyclictest's verbose lines parsed per thread, other lines ignored, and the
// per-window maxima consistent with the samples.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FLOOR_WINDOW_MS, parseCyclictestVerbose, summarizeFloor } from './host-floor.js';

const verbose = (series: number[][]): string =>
  ['# /dev/cpu_dma_latency set to 0us', 'Thread 0 Interval: 1000', ...series.flatMap((s, t) => s.map((v, i) => `${String(t).padStart(8)}:${String(i).padStart(8)}:${String(v).padStart(8)}`))].join('\n');

describe('host floor', () => {
  it('parses cyclictest -v per thread and skips headers and garbage', () => {
    const text = `${verbose([[10, 20, 30], [5, 6]])}\nT: 0 ( 1) P: 0 I:1000\n   x:  1: 2\n1:2\n`;
    const m = parseCyclictestVerbose(text);
    assert.deepEqual([...m.keys()], [0, 1]);
    assert.deepEqual(m.get(0), [10, 20, 30]);
    assert.deepEqual(m.get(1), [5, 6]);
  });

  it('summarizes whole windows only, and the worst window is the worst sample', () => {
    const periodUs = 20_000; // 100 samples per 2 s window
    const perWindow = (FLOOR_WINDOW_MS * 1000) / periodUs;
    fc.assert(fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: perWindow, maxLength: 3 * perWindow }), { minLength: 1, maxLength: 3 }), (series) => {
      const f = summarizeFloor(parseCyclictestVerbose(verbose(series)), periodUs);
      const whole = series.map((s) => s.slice(0, Math.floor(s.length / perWindow) * perWindow));
      assert.equal(f.threads, series.length);
      assert.equal(f.worstPerWindowMs.windows, whole.reduce((n, s) => n + s.length / perWindow, 0));
      assert.equal(f.worstPerWindowMs.max, Math.max(...whole.flat()) / 1000);
      assert.equal(f.wakeLatencyUs.max, Math.max(...series.flat()));
      assert.ok(f.over1msPerSecond >= 0);
    }));
  });

  it('refuses output with no whole window', () => {
    assert.throws(() => summarizeFloor(parseCyclictestVerbose(verbose([[1, 2, 3]])), 1000), /no samples for a whole window/);
    assert.throws(() => summarizeFloor(parseCyclictestVerbose('garbage'), 1000), /no samples/);
  });
});
