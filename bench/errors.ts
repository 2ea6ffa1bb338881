// Errors the benchmarks raise on purpose, each with a stable code and a message that says what to do.
// Anything else escaping a benchmark is a bug in the benchmark and is reported as such by main.ts.

/** Bad command-line input: unknown benchmark, bad option, bad number. */
export class BenchUsageError extends Error {
  readonly code = 'ERR_BENCH_USAGE';
}

/** A measured run (or its set-up) failed, so the numbers would be meaningless. */
export class BenchRunError extends Error {
  readonly code = 'ERR_BENCH_RUN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
