// Argument helpers every benchmark shares: bounded whole numbers, a guest RAM size, and paths in
// the repository. Each bad value becomes one BenchUsageError line.

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSizeMib } from '../src/cli/size.js';
import { BenchUsageError } from './errors.js';

const REPO_ROOT_URL = new URL('../../', import.meta.url);
export const repoRoot = fileURLToPath(REPO_ROOT_URL);
export const inRepo = (p: string): string => fileURLToPath(new URL(p, REPO_ROOT_URL));

/**
 * The `--name value` options of `argv` among `names` (strict: unknown options and positionals are
 * refused), or one BenchUsageError line ending with the benchmark's usage.
 */
export function stringOptions<K extends string>(argv: string[], names: readonly K[], usage: string): Partial<Record<K, string>> {
  const options = Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values as Partial<Record<K, string>>;
  } catch (e) {
    throw new BenchUsageError(`${(e as Error).message.split('\n')[0]}; ${usage}`);
  }
}

export function wholeNumber(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new BenchUsageError(`--${flag} must be a whole number from ${min} to ${max}, not "${text}"`);
  }
  return Number(text);
}

/** `--mem` as MiB, from 2 MiB to `maxMib`. */
export function memArg(text: string | undefined, fallback: number, maxMib: number): number {
  if (text === undefined) return fallback;
  let mib: number;
  try {
    mib = parseSizeMib(text, '--mem');
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
  if (mib < 2 || mib > maxMib) throw new BenchUsageError(`--mem must be from 2M to ${maxMib}M, not "${text}"`);
  return mib;
}
