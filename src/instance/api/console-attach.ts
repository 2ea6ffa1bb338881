// Console attach: `GET /v1/vms/{name}/console` with `Upgrade: swapvisor-console` switches the
// connection to a raw byte stream, guest UART output to the client and client bytes to the guest.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApiContext } from './server.js';
import { errorStatus } from './http-util.js';

const CONSOLE_PATH = /^\/v1\/vms\/([a-z0-9][a-z0-9._-]{0,62})\/console$/;
export const CONSOLE_UPGRADE = 'swapvisor-console';

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 409 ? 'Conflict' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export function attachConsole(ctx: ApiContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const url = new URL(req.url ?? '/', 'http://swapvisor');
  const m = CONSOLE_PATH.exec(url.pathname);
  if (req.method !== 'GET' || !m || String(req.headers.upgrade).toLowerCase() !== CONSOLE_UPGRADE) {
    refuse(socket, 400, 'ERR_VALIDATION', `upgrade only GET /v1/vms/{name}/console with "Upgrade: ${CONSOLE_UPGRADE}"`);
    return;
  }
  let vm;
  try {
    vm = ctx.registry.get(m[1]!);
  } catch (e) {
    const { status, code, message } = errorStatus(e);
    refuse(socket, status, code, message);
    return;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${CONSOLE_UPGRADE}\r\n\r\n`);
  const detach = vm.console.attach({ write: (bytes) => { if (socket.writable) socket.write(bytes); } });
  if (head.byteLength > 0) vm.console.sendInput(head);
  socket.on('data', (d: Buffer) => vm.console.sendInput(d));
  socket.on('close', detach);
  socket.on('error', detach);
  ctx.log('api.console.attach', { vm: vm.name });
}
