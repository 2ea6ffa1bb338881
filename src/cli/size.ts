// Parses sizes such as 64M, 1G, 512MiB or a plain number of MiB into whole MiB.

import { UsageError } from './errors.js';

const UNITS: Record<string, number> = { '': 1, m: 1, mb: 1, mib: 1, g: 1024, gb: 1024, gib: 1024 };

export function parseSizeMib(text: string, what: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`${what} "${text}" is not a size: write it in whole MiB or GiB, e.g. 64M or 1G`);
  }
  const mib = Number(m[1]) * unit;
  if (!Number.isSafeInteger(mib)) throw new UsageError(`${what} "${text}" is too large`);
  return mib;
}
