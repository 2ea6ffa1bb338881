// Errors of the platform record: a stable `code` for callers, a message that says what to do.

export type PlatformRecordErrorCode =
  | 'ERR_PLATFORM_RECORD_CORRUPT'
  | 'ERR_PLATFORM_RECORD_UNREADABLE'
  | 'ERR_PLATFORM_RECORD_WRITE'
  | 'ERR_PLATFORM_SLICE';

export class PlatformRecordError extends Error {
  override readonly name = 'PlatformRecordError';

  constructor(readonly code: PlatformRecordErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
