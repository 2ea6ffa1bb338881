// `swapvisor console VM`: attaches this terminal to a VM's console through the daemon (HTTP
// Upgrade to a raw byte stream). Ctrl-] detaches; the VM keeps running.

import { request } from 'node:http';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { ApiClient, stateDirFrom } from './api-client.js';
import { UsageError } from './errors.js';
import { CONSOLE_USAGE } from './usage.js';

const DETACH = 0x1d;

export async function consoleCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: { 'state-dir': { type: 'string' }, stream: { type: 'string' } } });
  if (positionals.length !== 1) throw new UsageError(CONSOLE_USAGE);
  const api = new ApiClient(stateDirFrom(values['state-dir']));
  const name = positionals[0]!;
  await api.json('GET', `/v1/vms/${encodeURIComponent(name)}`); // a clear error for unknown VMs or no daemon
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = request({ socketPath: api.socketPath, path: `/v1/vms/${encodeURIComponent(name)}/console${values.stream !== undefined ? `?stream=${encodeURIComponent(values.stream)}` : ''}`, headers: { connection: 'upgrade', upgrade: 'swapvisor-console' } });
    req.on('upgrade', (_res, s: Socket, head: Buffer) => {
      if (head.byteLength > 0) process.stdout.write(head);
      resolve(s);
    });
    req.on('response', (res) => reject(new UsageError(`the daemon refused the console (HTTP ${res.statusCode})`)));
    req.on('error', reject);
    req.end();
  });
  const tty = process.stdin.isTTY === true;
  if (tty) {
    process.stdin.setRawMode(true);
    process.stderr.write(`attached to ${name}; detach with Ctrl-]\r\n`);
  }
  return new Promise<number>((resolve) => {
    const finish = (code: number): void => {
      if (tty) process.stdin.setRawMode(false);
      process.stdin.pause();
      socket.destroy();
      resolve(code);
    };
    socket.on('data', (d: Buffer) => process.stdout.write(d));
    socket.on('close', () => finish(0));
    process.stdin.on('data', (d: Buffer) => {
      const i = tty ? d.indexOf(DETACH) : -1;
      if (i >= 0) {
        if (i > 0) socket.write(d.subarray(0, i));
        finish(0);
        return;
      }
      socket.write(d);
    });
    process.once('SIGINT', () => finish(130));
  });
}
