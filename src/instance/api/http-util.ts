// Small HTTP helpers for the API server: bounded body reading, JSON replies, and the mapping from
// an error's stable code to its HTTP status.

import type { IncomingMessage, ServerResponse } from 'node:http';

export const MAX_BODY_BYTES = 64 * 1024;

/** An error the API answers with a given status; its code and message go into the JSON body. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  ERR_VALIDATION: 400, ERR_VM_CONFIG: 400, ERR_VM_IMAGE: 400, ERR_GUEST_KIT: 400, ERR_KERNEL_FORMAT: 400,
  ERR_KERNEL_UNSUPPORTED: 400, ERR_KERNEL_PLACEMENT: 400, ERR_BOOT_LAYOUT: 400, ERR_BOOT_CMDLINE: 400,
  ERR_NOT_FOUND: 404, ERR_METHOD_NOT_ALLOWED: 405, ERR_VM_EXISTS: 409, ERR_VM_STATE: 409,
  ERR_BODY_TOO_LARGE: 413, ERR_UNSUPPORTED_MEDIA_TYPE: 415, ERR_BUDGET_EXCEEDED: 507,
};

export function errorStatus(e: unknown): { status: number; code: string; message: string } {
  if (e instanceof HttpError) return { status: e.status, code: e.code, message: e.message };
  const status = (e as { status?: unknown }).status;
  const code = (e as { code?: unknown }).code;
  if (e instanceof Error && typeof code === 'string' && code.length > 0) {
    return { status: typeof status === 'number' ? status : STATUS_BY_CODE[code] ?? 500, code, message: e.message };
  }
  return { status: 500, code: 'ERR_INTERNAL', message: `internal error: ${e instanceof Error ? e.message : String(e)}` };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string | Buffer, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, e: unknown): void {
  const { status, code, message } = errorStatus(e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: { code, message } });
}

/** Reads a JSON body of at most MAX_BODY_BYTES; an empty body is `undefined`. */
export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      reject(new HttpError(413, 'ERR_BODY_TOO_LARGE', `request body of ${declared} bytes is over the ${MAX_BODY_BYTES}-byte limit`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      size += c.byteLength;
      if (size > MAX_BODY_BYTES && !failed) {
        failed = true;
        reject(new HttpError(413, 'ERR_BODY_TOO_LARGE', `request body is over the ${MAX_BODY_BYTES}-byte limit`));
      }
      if (!failed) chunks.push(c);
    });
    req.on('error', (e) => { if (!failed) { failed = true; reject(e); } });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') { resolve(undefined); return; }
      const type = String(req.headers['content-type'] ?? 'application/json');
      if (!/^application\/json\b/i.test(type)) {
        reject(new HttpError(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', `send the body as application/json, not ${type}`));
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new HttpError(400, 'ERR_VALIDATION', `the body is not valid JSON: ${(e as Error).message}`));
      }
    });
  });
}
