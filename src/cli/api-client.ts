// A client for the instance API over its unix socket, used by every CLI command that talks to
// the daemon. Errors come back as ApiCallError carrying the API's code and message.

import { request } from 'node:http';
import path from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/swapvisor';

export function stateDirFrom(flag: string | undefined): string {
  return path.resolve(flag ?? process.env['SWAPVISOR_STATE_DIR'] ?? DEFAULT_STATE_DIR);
}

export class ApiCallError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class DaemonNotRunningError extends Error {
  readonly code = 'ERR_DAEMON_NOT_RUNNING';
}

export interface ApiResponse {
  status: number;
  body: string;
}

export class ApiClient {
  constructor(readonly stateDir: string) {}

  get socketPath(): string {
    return path.join(this.stateDir, 'api.sock');
  }

  call(method: string, urlPath: string, body?: unknown, timeoutMs = 30_000): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath: this.socketPath, method, path: urlPath, timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`the daemon did not answer within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(new DaemonNotRunningError(`no swapvisor daemon is running for ${this.stateDir}; start one with: swapvisor daemon start --state-dir ${this.stateDir}`));
        } else {
          reject(e);
        }
      });
      req.end(payload);
    });
  }

  /** Calls and parses JSON; a non-2xx answer becomes an ApiCallError. */
  async json<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const r = await this.call(method, urlPath, body);
    if (r.status < 200 || r.status >= 300) throw toApiError(r);
    return (r.body === '' ? undefined : JSON.parse(r.body)) as T;
  }

  async text(urlPath: string): Promise<string> {
    const r = await this.call('GET', urlPath);
    if (r.status !== 200) throw toApiError(r);
    return r.body;
  }
}

function toApiError(r: ApiResponse): ApiCallError {
  try {
    const e = (JSON.parse(r.body) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string') return new ApiCallError(r.status, e.code, e.message);
  } catch {
    // not JSON: fall through
  }
  return new ApiCallError(r.status, 'ERR_HTTP', `the daemon answered HTTP ${r.status}`);
}
