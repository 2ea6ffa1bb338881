// Console attach: `GET /v1/vms/{name}/console` with `Upgrade: swapvisor-console` switches the
// connection to a raw byte stream, guest UART output to the client and client bytes to the guest.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApiContext } from './server.js';
import { errorStatus } from './http-util.js';
import type { VmConsole } from '../vm-console.js';
import type { InstanceVm } from '../vm.js';
import { ApiError } from './errors.js';

const CONSOLE_PATH = /^\/v1\/vms\/([a-z0-9][a-z0-9._-]{0,62})\/console$/;
export const CONSOLE_UPGRADE = 'swapvisor-console';

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 409 ? 'Conflict' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** The console stream a request names: `serial` (the default) or `vconsole`. */
export function consoleStream(vm: InstanceVm, stream: string | null): VmConsole {
  if (stream === null || stream === 'serial') return vm.console;
  if (stream !== 'vconsole') throw new ApiError('ERR_VALIDATION', `stream "${stream}" is not one of serial, vconsole`);
  if (!vm.vconsole) throw new ApiError('ERR_VM_STATE', `VM ${vm.name} has no virtio console: create it with "vconsole": true`);
  return vm.vconsole;
}

export function attachConsole(ctx: ApiContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const url = new URL(req.url ?? '/', 'http://swapvisor');
  const m = CONSOLE_PATH.exec(url.pathname);
  if (req.method !== 'GET' || !m || String(req.headers.upgrade).toLowerCase() !== CONSOLE_UPGRADE) {
    refuse(socket, 400, 'ERR_VALIDATION', `upgrade only GET /v1/vms/{name}/console with "Upgrade: ${CONSOLE_UPGRADE}"`);
    return;
  }
  let vm;
  let stream: VmConsole;
  try {
    vm = ctx.registry.get(m[1]!);
    stream = consoleStream(vm, url.searchParams.get('stream'));
  } catch (e) {
    const { status, code, message } = errorStatus(e);
    refuse(socket, status, code, message);
    return;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${CONSOLE_UPGRADE}\r\n\r\n`);
  if (head.byteLength > 0) stream.sendInput(head);
  serveConsole(stream, socket);
  ctx.log('api.console.attach', { vm: vm.name, stream: url.searchParams.get('stream') ?? 'serial' });
}

/** The fd under a Node socket (Linux, libuv pipe or TCP handle); undefined when there is none. */
function fdOf(socket: Duplex): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Serves one console connection: guest output to it, its bytes to the guest. During a hot swap the
 * connection is handed to the next instance (which calls this again on its copy of the fd) without
 * the client noticing: this side stops reading first, so no input is taken by the old instance.
 */
export function serveConsole(console: VmConsole, socket: Duplex, replay?: Uint8Array): void {
  // A handed-over connection first gets what the guest printed here before it arrived.
  if (replay && replay.byteLength > 0) socket.write(replay);
  const detach = console.attach({
    write: (bytes) => { if (socket.writable) socket.write(bytes); },
    handOff: () => {
      const fd = fdOf(socket);
      if (fd === undefined) return undefined;
      // pause() alone would let libuv go on reading into the stream's buffer, and bytes read here
      // after the handover would be lost: stop reading at the handle, then pass on what was buffered.
      socket.pause();
      (socket as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
      socket.removeAllListeners('data');
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) console.sendInput(chunk);
      return fd;
    },
  });
  socket.on('data', (d: Buffer) => console.sendInput(d));
  socket.on('close', detach);
  socket.on('error', detach);
}
