// Spawns one child process and times it: spawn → first stdout byte, and spawn → exit.
// It kills only the child it spawned, by PID, and only when the per-run timeout expires.

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { BenchRunError } from './errors.js';

export interface ChildTiming {
  /** Milliseconds from just before spawn() to the first stdout chunk; undefined if it printed nothing. */
  firstByteMs: number | undefined;
  /** Milliseconds from just before spawn() to the 'exit' event. */
  exitMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface ChildSpec {
  command: string;
  args: readonly string[];
  cwd?: string;
  timeoutMs: number;
}

/** Keeps at most the last `limit` characters of a stream, enough to quote in an error message. */
const STDERR_KEEP_CHARS = 4096;

export function timeChild(spec: ChildSpec): Promise<ChildTiming> {
  return new Promise((resolve, reject) => {
    let firstByteMs: number | undefined;
    let exitMs = 0;
    let code: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let timedOut = false;
    const out: Buffer[] = [];
    let stderr = '';
    const t0 = performance.now();
    const child = spawn(spec.command, spec.args, { cwd: spec.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => {
      if (firstByteMs === undefined) firstByteMs = performance.now() - t0;
      out.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-STDERR_KEEP_CHARS); });
    const timer = setTimeout(() => {
      timedOut = true;
      // INVARIANT: child.pid is the process we spawned and it has not been reaped yet (no 'exit' seen).
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, spec.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new BenchRunError(`cannot start ${spec.command}: ${e.message}`, { cause: e }));
    });
    child.on('exit', (c, s) => {
      exitMs = performance.now() - t0;
      code = c;
      signal = s;
      clearTimeout(timer);
    });
    // 'close' comes after 'exit' once stdout and stderr are drained, so the output is complete.
    child.on('close', () => {
      resolve({ firstByteMs, exitMs, code, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}

/** One line describing how a child ended, for error messages. */
export function describeEnd(t: ChildTiming): string {
  if (t.timedOut) return 'timed out and was killed';
  if (t.signal !== null) return `was killed by ${t.signal}`;
  return `exited with code ${t.code}`;
}
