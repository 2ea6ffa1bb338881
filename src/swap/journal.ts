// The swap's write-ahead journal: one JSON line per step, appended and fsync'ed before the step
// takes effect, in <state-dir>/swap.journal. Both instances append to it (O_APPEND keeps lines
// whole). After a crash it says which VMs were where. Timestamps are CLOCK_MONOTONIC nanoseconds,
// which both processes share, so one timeline can be drawn from both sides' entries.

import { closeSync, fsync, openSync, readFileSync, write, existsSync } from 'node:fs';
import path from 'node:path';

export interface JournalEntry {
  /** Monotonic time in ns (process.hrtime.bigint()), as a decimal string. */
  ns: string;
  at: string;
  pid: number;
  swap: string;
  step: string;
  vm?: string;
  [field: string]: unknown;
}

export const JOURNAL_FILE = 'swap.journal';

export class SwapJournal {
  private readonly fd: number;
  /** The last queued append: entries reach the file one at a time, in the order they were written. */
  private tail: Promise<void> = Promise.resolve();
  /** The first append that failed: every later one fails with it, so no step goes on unrecorded. */
  private broken: Error | undefined;

  constructor(stateDir: string, readonly swapId: string) {
    this.fd = openSync(path.join(stateDir, JOURNAL_FILE), 'a', 0o600);
  }

  /**
   * Appends one entry and fsyncs it; resolves once that is done. The write and the fsync run on a
   * pool thread: with a guest keeping the page cache dirty they took 1-15 ms here, and on the event
   * loop that stalled every VM's I/O meanwhile. A step that must be durable before it takes effect
   * awaits this. A VM's pause window writes nothing.
   */
  write(step: string, fields: Record<string, unknown> = {}): Promise<JournalEntry> {
    const entry = this.entry(step, fields);
    const line = Buffer.from(`${JSON.stringify(entry)}\n`);
    const done = this.tail.then(() => {
      if (this.broken) throw this.broken;
      return appendLine(this.fd, line);
    }).catch((e: unknown) => {
      throw this.fail(e);
    });
    this.tail = done.catch(() => undefined);
    return done.then(() => entry);
  }

  private entry(step: string, fields: Record<string, unknown>): JournalEntry {
    return { ns: process.hrtime.bigint().toString(), at: new Date().toISOString(), pid: process.pid, swap: this.swapId, step, ...fields };
  }

  private fail(e: unknown): Error {
    this.broken ??= new Error(`cannot write the swap journal: ${(e as Error).message}`, { cause: e });
    return this.broken;
  }

  /** Queues an entry that nothing waits for (from a callback); if it fails, the next write() fails with that error. */
  note(step: string, fields: Record<string, unknown> = {}): void {
    this.write(step, fields).catch(() => undefined);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function appendLine(fd: number, line: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    write(fd, line, 0, line.length, null, (err, n) => {
      if (err) return reject(err);
      if (n !== line.length) return reject(new Error(`short write (${n} of ${line.length} bytes)`));
      fsync(fd, (e) => (e ? reject(e) : resolve()));
    });
  });
}

/** Every entry of one swap (or of the last swap when `swapId` is omitted). Torn last lines are skipped. */
export function readJournal(stateDir: string, swapId?: string): JournalEntry[] {
  const file = path.join(stateDir, JOURNAL_FILE);
  if (!existsSync(file)) return [];
  const entries: JournalEntry[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      // a line torn by a crash mid-write: the step it names did not happen
    }
  }
  const id = swapId ?? entries.filter((e) => e.step === 'swap.begin').at(-1)?.swap;
  return id === undefined ? [] : entries.filter((e) => e.swap === id);
}
