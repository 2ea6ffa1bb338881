// A minimal QMP client over a unix socket for the benchmarks: waits for QEMU's greeting, negotiates
// capabilities, then runs one command at a time. Events are skipped. It never starts or stops QEMU.

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchRunError } from './errors.js';

type Json = Record<string, unknown>;

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
}

const CONNECT_RETRY_MS = 5;

export class QmpClient {
  private buffer = '';
  private greeted = false;
  private greetingWaiter: (() => void) | undefined;
  private readonly queue: Pending[] = [];
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket, private readonly label: string) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => this.fail(new BenchRunError(`${label}: QMP socket error: ${e.message}`, { cause: e })));
    socket.on('close', () => this.fail(new BenchRunError(`${label}: QMP socket closed`)));
  }

  /**
   * Connects to `socketPath`, retrying while QEMU has not created it yet, until `timeoutMs` passes or
   * `stillRunning()` turns false; then negotiates capabilities.
   */
  static async connect(socketPath: string, label: string, timeoutMs: number, stillRunning: () => boolean): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!stillRunning()) throw new BenchRunError(`${label}: QEMU exited before its QMP socket accepted a connection`);
      const socket = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.createConnection(socketPath);
        s.once('connect', () => resolve(s));
        s.once('error', () => {
          s.destroy();
          resolve(undefined);
        });
      });
      if (socket) {
        const client = new QmpClient(socket, label);
        await client.handshake(Math.max(1, deadline - Date.now()));
        return client;
      }
      if (Date.now() > deadline) throw new BenchRunError(`${label}: no QMP socket at ${socketPath} after ${timeoutMs} ms`);
      await sleep(CONNECT_RETRY_MS);
    }
  }

  /** Runs one command and resolves with its "return" value; a QMP "error" rejects with QEMU's description. */
  execute(command: string, args?: Json): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.queue.push({ command, resolve, reject });
      this.socket.write(`${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`);
    });
  }

  close(): void {
    this.closedError ??= new BenchRunError(`${this.label}: QMP client closed`);
    this.socket.destroy();
  }

  private async handshake(timeoutMs: number): Promise<void> {
    if (!this.greeted) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          this.greetingWaiter = resolve;
          timer = setTimeout(() => reject(new BenchRunError(`${this.label}: no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
        });
      } finally {
        clearTimeout(timer);
        this.greetingWaiter = undefined;
      }
    }
    await this.execute('qmp_capabilities');
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line.length > 0) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Json;
    try {
      msg = JSON.parse(line) as Json;
    } catch {
      this.fail(new BenchRunError(`${this.label}: QMP sent a line that is not JSON: ${line.slice(0, 120)}`));
      return;
    }
    if ('QMP' in msg) {
      this.greeted = true;
      this.greetingWaiter?.();
      return;
    }
    if ('event' in msg) return;
    const pending = this.queue.shift();
    if (!pending) return;
    if ('error' in msg) {
      const err = msg['error'] as { class?: string; desc?: string };
      pending.reject(new BenchRunError(`${this.label}: QMP ${pending.command} failed: ${err.class ?? 'Error'}: ${err.desc ?? line}`));
    } else {
      pending.resolve(msg['return']);
    }
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const p of this.queue.splice(0)) p.reject(e);
  }
}
