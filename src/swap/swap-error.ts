// Errors of the hot swap, each with a stable code; the message says what happened and what to do.

export type SwapErrorCode =
  | 'ERR_SWAP_TARGET' | 'ERR_SWAP_VERSION' | 'ERR_SWAP_LAUNCH' | 'ERR_SWAP_HEALTH' | 'ERR_SWAP_IN_PROGRESS'
  | 'ERR_SWAP_MOVE' | 'ERR_SWAP_ABORTED' | 'ERR_SWAP_RETIRE' | 'ERR_SWAP_STATE' | 'ERR_SWAP_CANARY';

export class SwapError extends Error {
  constructor(readonly code: SwapErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
