// The one error class of the state layer. Every rejection of saved state (a platform record, a
// handover stream, a VM definition) throws a StateFormatError with a stable `code`; callers branch on
// the code, people read the message, which says what is wrong and what to do about it.

export type StateFormatErrorCode =
  | 'ERR_STATE_MAGIC'
  | 'ERR_STATE_VERSION'
  | 'ERR_STATE_TRUNCATED'
  | 'ERR_STATE_OVERSIZED'
  | 'ERR_STATE_CHECKSUM'
  | 'ERR_STATE_KIND'
  | 'ERR_STATE_CONTENT';

export class StateFormatError extends Error {
  override readonly name = 'StateFormatError';

  constructor(readonly code: StateFormatErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
