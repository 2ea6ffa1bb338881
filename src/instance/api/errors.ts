// Errors the HTTP API answers with: a stable code, the HTTP status that code always maps to, and a one-line
// message that says what to do. Not for failures inside the VMM (those keep their own error classes and
// become ERR_INTERNAL or a more specific code at the API boundary).

/** Stable codes: clients and tests match on these, never on the message. Mirrors ErrorCode in api/openapi.yaml. */
export type ApiErrorCode =
  /** The request (body, path or query) is malformed; the message names the field. */
  | 'ERR_VALIDATION'
  /** No VM with that name, or no such path. */
  | 'ERR_NOT_FOUND'
  /** The path exists, but not with this method. */
  | 'ERR_METHOD_NOT_ALLOWED'
  /** The VM is in the wrong state for the request (start a running VM, delete a running VM without force). */
  | 'ERR_VM_STATE'
  /** A VM with that name already exists. */
  | 'ERR_VM_EXISTS'
  /** The request body is over MAX_BODY_BYTES. */
  | 'ERR_BODY_TOO_LARGE'
  /** A body was sent with a Content-Type other than application/json. */
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  /** A bug or a host failure; the daemon's log has the cause. */
  | 'ERR_INTERNAL'
  /** The VM's memory does not fit in what is left of the partition's budget. */
  | 'ERR_BUDGET_EXCEEDED'
  /** The VM's kernel, initrd or guest-kit image cannot be read or booted. */
  | 'ERR_VM_IMAGE';

/** The one HTTP status each code is answered with. */
export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, number>> = {
  ERR_VALIDATION: 400,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_VM_STATE: 409,
  ERR_VM_EXISTS: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_INTERNAL: 500,
  ERR_BUDGET_EXCEEDED: 507,
  ERR_VM_IMAGE: 400,
};

/** The JSON body of every error response (schema `Error`). */
export interface ErrorBody {
  error: { code: ApiErrorCode; message: string };
}

/** An error to answer a request with. The message is sent to the client, so it must not leak host internals. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(readonly code: ApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = API_ERROR_STATUS[code];
  }
}

const INTERNAL_MESSAGE = 'internal error: see the daemon log for details';

/**
 * Any thrown value as an ApiError: an ApiError as it is, anything else as ERR_INTERNAL with a generic
 * message (the original is kept as `cause` for the log, and never sent to the client).
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError('ERR_INTERNAL', INTERNAL_MESSAGE, { cause: e });
}

/** The response body for any thrown value; pair it with `toApiError(e).status`. */
export function errorBody(e: unknown): ErrorBody {
  const err = toApiError(e);
  return { error: { code: err.code, message: oneLine(err.message) } };
}

/** Messages go into one JSON string a human reads in a terminal: no line breaks, no runaway length. */
function oneLine(message: string): string {
  const flat = message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return flat.length > 1024 ? `${flat.slice(0, 1021)}...` : flat;
}
