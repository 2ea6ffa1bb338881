// Shared helpers for the integration tests: run the real swapvisor CLI as a child process, and
// count this process's open file descriptors to catch leaks.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'bin', 'swapvisor.cjs');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `swapvisor ...args`; kills it (by PID) if it outlives timeoutMs. */
export function runCli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; signalAfterMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    const signaller = opts.signalAfterMs !== undefined ? setTimeout(() => child.kill('SIGINT'), opts.signalAfterMs) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      if (signaller) clearTimeout(signaller);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Lines of `text` that start with `prefix`. */
export function linesStartingWith(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

/** Parses heartbeat lines `hb <seq> <tsc> <maxgap_us>`. */
export function heartbeats(text: string): Array<{ seq: number; tsc: bigint; maxGapUs: number }> {
  return linesStartingWith(text, 'hb ')
    .filter((l) => /^hb \d+ \d+ \d+$/.test(l))
    .map((l) => {
      const [, seq, tsc, gap] = l.split(' ');
      return { seq: Number(seq), tsc: BigInt(tsc!), maxGapUs: Number(gap) };
    });
}

/** Heartbeat seq numbers in `text` must run n, n+1, n+2, ... with no gap and no repeat. */
export function assertHeartbeatsContinuous(text: string): void {
  const seqs = [...text.matchAll(/^hb (\d+) \d+ \d+$/gm)].map((m) => Number(m[1]));
  assert.ok(seqs.length > 10, `only ${seqs.length} heartbeats`);
  seqs.forEach((s, i) => assert.equal(s, seqs[0]! + i, `heartbeat ${i} is ${s}, expected ${seqs[0]! + i}`));
}

/** The nice value of a process's main thread (field 19 of /proc/<pid>/stat). */
export function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}
