// One VM's console stream: what the guest writes to its UART goes to an in-memory tail, a log
// file in the state dir, and every attached client; what clients send goes to the guest's input.

import { closeSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import type { ByteSink } from '../devices/device.js';

const TAIL_BYTES = 1024 * 1024;
/** Client input held back while the guest side takes none (a paused VM): beyond this it is dropped. */
const MAX_HELD_INPUT = 256 * 1024;

/** Delivers client input to the guest; returns how many bytes were taken (void: all of them). */
export type ConsoleInput = (bytes: Uint8Array) => number | void;
const LOG_ROTATE_BYTES = 16 * 1024 * 1024;

export interface ConsoleClient {
  write(bytes: Uint8Array): void;
  /**
   * For a hot swap: stop serving this client here and give up its connection's fd (the next
   * instance serves it on). Undefined if the connection cannot be handed over.
   */
  handOff?(): number | undefined;
}

export class VmConsole implements ByteSink {
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private pending: Buffer[] = [];
  private flushScheduled = false;
  private logFd: number | undefined;
  private logBytes = 0;
  private readonly clients = new Set<ConsoleClient>();
  bytesOut = 0;
  bytesIn = 0;
  private input: ConsoleInput | undefined;
  /** Client input the guest side did not take yet (a paused virtio console): delivered first, or handed over. */
  private held: Buffer = Buffer.alloc(0);
  inputDropped = 0;

  /**
   * @param history 'from-log' starts the in-memory history with the end of the existing log (a VM
   *   reloaded by a new daemon); 'handed-over' leaves it to the previous instance (a hot swap).
   */
  constructor(private readonly logPath: string, history: 'from-log' | 'handed-over' = 'from-log') {
    this.logFd = openSync(logPath, 'a', 0o600);
    try {
      this.logBytes = statSync(logPath).size;
    } catch {
      this.logBytes = 0;
    }
    if (history === 'from-log' && this.logBytes > 0) {
      const n = Math.min(this.logBytes, TAIL_BYTES);
      const buf = Buffer.alloc(n);
      const fd = openSync(logPath, 'r');
      try {
        readSync(fd, buf, 0, n, this.logBytes - n);
      } finally {
        closeSync(fd);
      }
      this.history = buf;
    }
  }

  /** Guest output (called from the UART model; the bytes are only valid during the call). */
  write(bytes: Uint8Array): void {
    const copy = Buffer.from(bytes);
    this.bytesOut += copy.byteLength;
    this.pending.push(copy);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Hands pending output to the tail, the log and the clients; one write each per event-loop turn. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const chunk = Buffer.concat(this.pending);
    this.pending = [];
    this.tail.push(chunk);
    this.tailBytes += chunk.byteLength;
    // Compact now and then, keeping the last TAIL_BYTES: trimming chunk by chunk with shift() is
    // O(chunks) per line and was the daemon's main cost per console line.
    if (this.tail.length > 256) this.compactTail();
    this.appendLog(chunk);
    for (const c of this.clients) c.write(chunk);
  }

  private appendLog(chunk: Buffer): void {
    if (this.logFd === undefined) return;
    if (this.logBytes + chunk.byteLength > LOG_ROTATE_BYTES) {
      closeSync(this.logFd);
      renameSync(this.logPath, `${this.logPath}.1`);
      this.logFd = openSync(this.logPath, 'a', 0o600);
      this.logBytes = 0;
    }
    writeSync(this.logFd, chunk);
    this.logBytes += chunk.byteLength;
  }

  /**
   * Output from before a hot swap, which the previous instance hands over in pieces (oldest first);
   * it goes before everything this instance has seen, so `console/log` reads as one history.
   */
  addHistory(bytes: Uint8Array): void {
    this.history = Buffer.concat([this.history, Buffer.from(bytes)]);
    if (this.history.byteLength > TAIL_BYTES) this.history = Buffer.from(this.history.subarray(this.history.byteLength - TAIL_BYTES));
  }

  private history: Buffer = Buffer.alloc(0);

  private compactTail(): void {
    const all = Buffer.concat(this.tail);
    const kept = all.byteLength > TAIL_BYTES ? Buffer.from(all.subarray(all.byteLength - TAIL_BYTES)) : all;
    this.tail = [kept];
    this.tailBytes = kept.byteLength;
  }

  /** The last `maxBytes` of output (from memory: this run's output, up to 1 MiB). */
  readTail(maxBytes: number): Buffer {
    this.flush();
    this.compactTail();
    const all = Buffer.concat([this.history, this.tail[0] ?? Buffer.alloc(0)]);
    return all.subarray(Math.max(0, all.byteLength - maxBytes));
  }

  /** Where client input goes; set while a machine runs, cleared when it stops. */
  connectInput(input: ConsoleInput | undefined): void {
    this.input = input;
  }

  sendInput(bytes: Uint8Array): void {
    this.bytesIn += bytes.byteLength;
    this.held = this.held.byteLength > 0 ? Buffer.concat([this.held, bytes]) : Buffer.from(bytes);
    this.deliverHeld();
  }

  /** Offers held input to the guest side again (after a resume). */
  deliverHeld(): void {
    if (this.held.byteLength === 0 || !this.input) return;
    const taken = this.input(this.held);
    this.held = typeof taken === 'number' ? this.held.subarray(taken) : Buffer.alloc(0);
    if (this.held.byteLength > MAX_HELD_INPUT) {
      this.inputDropped += this.held.byteLength - MAX_HELD_INPUT;
      this.held = Buffer.from(this.held.subarray(0, MAX_HELD_INPUT));
    }
  }

  /** For a hot swap: the input not delivered here, which the next instance delivers first. */
  takeHeldInput(): Buffer {
    const h = this.held;
    this.held = Buffer.alloc(0);
    return h;
  }

  attach(client: ConsoleClient): () => void {
    this.clients.add(client);
    return () => this.clients.delete(client);
  }

  /** Hands every attached connection over (see ConsoleClient.handOff): their fds, no longer served here. */
  handOffClients(): number[] {
    this.flush();
    const fds: number[] = [];
    for (const c of [...this.clients]) {
      const fd = c.handOff?.();
      if (fd !== undefined) {
        fds.push(fd);
        this.clients.delete(c);
      }
    }
    return fds;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  close(): void {
    this.flush();
    if (this.logFd !== undefined) closeSync(this.logFd);
    this.logFd = undefined;
  }
}
