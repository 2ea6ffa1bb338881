// Small descriptive statistics for benchmark samples: percentiles and a fixed summary shape.
// It is not a statistics library: no confidence intervals, no outlier rejection.

export interface Summary {
  p50: number;
  p90: number;
  min: number;
  max: number;
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) by linear interpolation between closest ranks,
 * the same definition as numpy's default, so p50 of an even-sized set is the mean of the middle two.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of an empty sample set');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const loValue = sorted[lo]!;
  return loValue + (sorted[hi]! - loValue) * (rank - lo);
}

export function summarize(samples: readonly number[]): Summary {
  return {
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    min: Math.min(...samples),
    max: Math.max(...samples),
  };
}

/** Rounds to `digits` decimals for printing; timings here are noisy well above 0.01 ms. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
