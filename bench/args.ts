// Argument helpers every benchmark shares: bounded whole numbers, a guest RAM size, and paths in
// the repository. Each bad value becomes one BenchUsageError line.

import { fileURLToPath } from 'node:url';
import { parseSizeMib } from '../src/cli/size.js';
import { BenchUsageError } from './errors.js';

const REPO_ROOT_URL = new URL('../../', import.meta.url);
export const repoRoot = fileURLToPath(REPO_ROOT_URL);
export const inRepo = (p: string): string => fileURLToPath(new URL(p, REPO_ROOT_URL));

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
