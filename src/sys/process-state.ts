// Whether a process still runs, from /proc: a zombie does not (it has exited; only its parent has not
// reaped it yet).

import { readFileSync } from 'node:fs';

/** False once `pid` is gone or a zombie (state Z in /proc/<pid>/stat). */
export function processRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "pid (comm) state ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  const end = stat.lastIndexOf(')');
  return stat.slice(end + 2, end + 3) !== 'Z';
}
