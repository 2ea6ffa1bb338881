// Turns any error into the one line a user sees: what is wrong and what to do. Errors with a
// stable `code` (ours, or a NativeError) print their message; anything else is a bug and says so.

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0) return e.message;
    return `internal error: ${e.message} (please report this)`;
  }
  return `internal error: ${String(e)}`;
}
