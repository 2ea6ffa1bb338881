// The instance's HTTP/1.1 + JSON API on a unix socket (mode 0600). Routes map one to one onto the
// operations in api/openapi.yaml; bodies are validated against the spec before anything happens.

import { chmodSync, rmSync } from 'node:fs';
import { native } from '../../sys/native.js';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { VmRegistry } from '../vm-registry.js';
import type { VmConfig } from '../vm-config.js';
import { readJsonBody, sendError, sendJson, sendText } from './http-util.js';
import { ApiError } from './errors.js';
import { attachConsole, consoleStream } from './console-attach.js';
import { parseForce, parseTailBytes, validateActionBody } from './validate.js';
import { type SwapControl, validateSwapRequest } from '../swap-control.js';

export interface ApiContext {
  registry: VmRegistry;
  instance(): unknown;
  platform(): unknown;
  platformText(): string;
  metrics(): string;
  validateVmConfig(body: unknown): VmConfig;
  swap: SwapControl;
  log(event: string, fields: Record<string, unknown>): void;
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse, params: string[], query: URLSearchParams) => Promise<void>;

const NAME = '([a-z0-9][a-z0-9._-]{0,62})';

async function noBody(req: IncomingMessage): Promise<void> {
  validateActionBody(await readJsonBody(req));
}

const vmAction = (action: 'start' | 'pause' | 'resume' | 'stop'): Handler => async (ctx, req, res, [name]) => {
  await noBody(req);
  const vm = ctx.registry.get(name!);
  if (action === 'start') await vm.start();
  else if (action === 'pause') await vm.pause();
  else if (action === 'resume') await vm.resume();
  else await vm.stop();
  ctx.log(`api.vm.${action}`, { vm: name });
  sendJson(res, 200, vm.info());
};

const ROUTES: Array<{ method: string; path: RegExp; handler: Handler }> = [
  { method: 'GET', path: /^\/v1\/instance$/, handler: async (ctx, _req, res) => sendJson(res, 200, ctx.instance()) },
  {
    method: 'GET', path: /^\/v1\/platform$/, handler: async (ctx, _req, res, _p, q) => {
      const format = q.get('format') ?? 'json';
      if (format === 'text') sendText(res, 200, ctx.platformText());
      else if (format === 'json') sendJson(res, 200, ctx.platform());
      else throw new ApiError('ERR_VALIDATION', 'format must be json or text');
    },
  },
  { method: 'GET', path: /^\/v1\/vms$/, handler: async (ctx, _req, res) => sendJson(res, 200, { vms: ctx.registry.list().map((v) => v.info()) }) },
  {
    method: 'POST', path: /^\/v1\/vms$/, handler: async (ctx, req, res) => {
      const config = ctx.validateVmConfig(await readJsonBody(req));
      const vm = await ctx.registry.create(config, config.autostart === true);
      ctx.log('api.vm.create', { vm: config.name });
      if (config.autostart) {
        try {
          await vm.start();
        } catch (e) {
          await ctx.registry.remove(config.name, true);
          throw e;
        }
      }
      res.setHeader('location', `/v1/vms/${config.name}`);
      sendJson(res, 201, vm.info());
    },
  },
  { method: 'GET', path: new RegExp(`^/v1/vms/${NAME}$`), handler: async (ctx, _req, res, [name]) => sendJson(res, 200, ctx.registry.get(name!).info()) },
  {
    method: 'DELETE', path: new RegExp(`^/v1/vms/${NAME}$`), handler: async (ctx, req, res, [name], q) => {
      await noBody(req);
      await ctx.registry.remove(name!, parseForce(q.get('force')));
      ctx.log('api.vm.remove', { vm: name });
      res.writeHead(204).end();
    },
  },
  { method: 'POST', path: new RegExp(`^/v1/vms/${NAME}/start$`), handler: vmAction('start') },
  { method: 'POST', path: new RegExp(`^/v1/vms/${NAME}/pause$`), handler: vmAction('pause') },
  { method: 'POST', path: new RegExp(`^/v1/vms/${NAME}/resume$`), handler: vmAction('resume') },
  { method: 'POST', path: new RegExp(`^/v1/vms/${NAME}/stop$`), handler: vmAction('stop') },
  {
    method: 'GET', path: new RegExp(`^/v1/vms/${NAME}/console/log$`), handler: async (ctx, _req, res, [name], q) => {
      const vm = ctx.registry.get(name!);
      sendText(res, 200, consoleStream(vm, q.get('stream')).readTail(parseTailBytes(q.get('tailBytes'))), 'text/plain; charset=utf-8');
    },
  },
  {
    method: 'POST', path: /^\/v1\/swap$/, handler: async (ctx, req, res) => {
      const { status, report } = await ctx.swap.start(validateSwapRequest(await readJsonBody(req)));
      sendJson(res, status, report);
    },
  },
  { method: 'GET', path: /^\/v1\/swap$/, handler: async (ctx, _req, res) => sendJson(res, 200, ctx.swap.status()) },
  { method: 'DELETE', path: /^\/v1\/swap$/, handler: async (ctx, req, res) => { await noBody(req); sendJson(res, 202, ctx.swap.abort()); } },
  { method: 'GET', path: /^\/metrics$/, handler: async (ctx, _req, res) => sendText(res, 200, ctx.metrics(), 'text/plain; version=0.0.4; charset=utf-8') },
];

async function dispatch(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://swapvisor');
  const matching = ROUTES.map((r) => ({ r, m: r.path.exec(url.pathname) })).filter((x) => x.m !== null);
  if (matching.length === 0) throw new ApiError('ERR_NOT_FOUND', `no such resource: ${url.pathname}; see api/openapi.yaml`);
  const hit = matching.find((x) => x.r.method === req.method);
  if (hit && ctx.swap.inProgress && req.method !== 'GET' && url.pathname.startsWith('/v1/vms')) {
    throw new ApiError('ERR_VM_STATE', 'a hot swap is in progress; change VMs once it is done (GET /v1/swap)');
  }
  if (!hit) {
    res.setHeader('allow', matching.map((x) => x.r.method).join(', '));
    throw new ApiError('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
  }
  await hit.r.handler(ctx, req, res, hit.m!.slice(1), url.searchParams);
}

/** Upgraded console connections per server: http.Server no longer tracks them after a 101. */
const upgraded = new WeakMap<Server, Set<Duplex>>();

export function createApiServer(ctx: ApiContext): Server {
  const consoles = new Set<Duplex>();
  const server = createServer((req, res) => {
    dispatch(ctx, req, res).catch((e: unknown) => {
      ctx.log('api.error', { method: req.method, url: req.url, error: e instanceof Error ? e.message : String(e) });
      sendError(res, e);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    consoles.add(socket);
    socket.on('close', () => consoles.delete(socket));
    attachConsole(ctx, req, socket, head);
  });
  upgraded.set(server, consoles);
  server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return;
    const body = JSON.stringify({ error: { code: 'ERR_VALIDATION', message: `malformed HTTP request (${e.code ?? 'parse error'}); send HTTP/1.1 with JSON bodies` } });
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return server;
}

/**
 * Listens on `socketPath` (replacing a stale socket file), owner-only. The socket is bound outside
 * libuv, so closing it never unlinks the path: a hot swap hands the fd to the next instance.
 * Returns the listening fd.
 */
export async function listenUnix(server: Server, socketPath: string): Promise<number> {
  rmSync(socketPath, { force: true });
  const fd = native().unixListen(socketPath, 511);
  chmodSync(socketPath, 0o600);
  await listenFd(server, fd);
  return fd;
}

/** Serves on an already listening socket fd (our own, or one handed over by a swap). */
export function listenFd(server: Server, fd: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Stops listening and ends every connection, console streams included. */
export function closeApiServer(server: Server): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  for (const s of upgraded.get(server) ?? []) s.destroy();
  return done;
}
