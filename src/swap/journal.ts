// The swap's write-ahead journal: one JSON line per step, appended and fsync'ed before the step
// takes effect, in <state-dir>/swap.journal. Both instances append to it (O_APPEND keeps lines
// whole). After a crash it says which VMs were where. Timestamps are CLOCK_MONOTONIC nanoseconds,
// which both processes share, so one timeline can be drawn from both sides' entries.

import { closeSync, fsyncSync, openSync, readFileSync, writeSync, existsSync } from 'node:fs';
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

  constructor(stateDir: string, readonly swapId: string) {
    this.fd = openSync(path.join(stateDir, JOURNAL_FILE), 'a', 0o600);
  }

  /**
   * Appends one entry and, unless `durable` is false, fsyncs it before returning. Steps inside a
   * VM's pause window are written without the fsync (it costs milliseconds here); the next
   * durable entry makes them durable too.
   */
  write(step: string, fields: Record<string, unknown> = {}, durable = true): JournalEntry {
    const entry: JournalEntry = { ns: process.hrtime.bigint().toString(), at: new Date().toISOString(), pid: process.pid, swap: this.swapId, step, ...fields };
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
    if (durable) fsyncSync(this.fd);
    return entry;
  }

  close(): void {
    closeSync(this.fd);
  }
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
