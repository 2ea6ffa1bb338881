// Small HTTP helpers for the API server: bounded body reading, JSON replies, and the mapping from
// an error's stable code to its HTTP status.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_ERROR_STATUS, ApiError, type ApiErrorCode } from './errors.js';

import { MAX_BODY_BYTES } from './validate.js';

/** Codes raised below the API (instance, loader, VMM) and the API code each is answered with. */
const API_CODE_OF: Record<string, ApiErrorCode> = {
  ERR_VM_CONFIG: 'ERR_VALIDATION', ERR_VM_IMAGE: 'ERR_VM_IMAGE', ERR_GUEST_KIT: 'ERR_VM_IMAGE',
  ERR_KERNEL_FORMAT: 'ERR_VM_IMAGE', ERR_KERNEL_UNSUPPORTED: 'ERR_VM_IMAGE', ERR_KERNEL_PLACEMENT: 'ERR_VM_IMAGE',
  ERR_BOOT_LAYOUT: 'ERR_VM_IMAGE', ERR_BOOT_CMDLINE: 'ERR_VALIDATION',
  // A VM's devices: its disk images and taps, opened when it starts.
  ERR_BLOCK_FILE_NOT_FOUND: 'ERR_VM_IMAGE', ERR_BLOCK_FILE_PERMISSION: 'ERR_VM_IMAGE', ERR_BLOCK_FILE_TYPE: 'ERR_VM_IMAGE',
  ERR_BLOCK_FILE_SIZE: 'ERR_VM_IMAGE', ERR_BLOCK_FILE_READ_ONLY: 'ERR_VM_IMAGE', ERR_BLOCK_FILE_IO: 'ERR_VM_IMAGE',
  ERR_TAP_NO_TUN_DEVICE: 'ERR_VALIDATION', ERR_TAP_NAME: 'ERR_VALIDATION', ERR_TAP_PERMISSION: 'ERR_VALIDATION', ERR_TAP_BUSY: 'ERR_VALIDATION',
  ERR_TAP_NETNS: 'ERR_VALIDATION', ERR_TAP_DOWN: 'ERR_VALIDATION', ERR_TAP_IO: 'ERR_VALIDATION', ERR_VIRTIO_CONFIG: 'ERR_VALIDATION',
};

/** The status, API code and message an error is answered with; anything unexpected is ERR_INTERNAL. */
export function errorStatus(e: unknown): { status: number; code: ApiErrorCode; message: string } {
  if (e instanceof ApiError) return { status: e.status, code: e.code, message: e.message };
  const code = (e as { code?: unknown }).code;
  if (e instanceof Error && typeof code === 'string') {
    const apiCode = code in API_ERROR_STATUS ? (code as ApiErrorCode) : API_CODE_OF[code];
    if (apiCode) return { status: API_ERROR_STATUS[apiCode], code: apiCode, message: e.message };
    return { status: 500, code: 'ERR_INTERNAL', message: e.message };
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
      reject(new ApiError('ERR_BODY_TOO_LARGE', `request body of ${declared} bytes is over the ${MAX_BODY_BYTES}-byte limit`));
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
        reject(new ApiError('ERR_BODY_TOO_LARGE', `request body is over the ${MAX_BODY_BYTES}-byte limit`));
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
        reject(new ApiError('ERR_UNSUPPORTED_MEDIA_TYPE', `send the body as application/json, not ${type}`));
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ApiError('ERR_VALIDATION', `the body is not valid JSON: ${(e as Error).message}`));
      }
    });
  });
}
