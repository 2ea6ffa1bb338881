// Tools the benchmarks run but the project does not need (QEMU, cyclictest): found on PATH, or
// installed from Debian's packages with apt-get the first time a benchmark needs them.

import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { BenchRunError } from './errors.js';

function findOnPath(binary: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d.length > 0);
  for (const dir of [...dirs, '/usr/bin']) {
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

function aptInstall(binary: string, aptPackage: string, log: (line: string) => void): boolean {
  log(`${binary} not found; installing ${aptPackage} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean =>
    spawnSync('apt-get', ['install', '-y', aptPackage], { stdio: ['ignore', 2, 2], env }).status === 0;
  if (install()) return true;
  log('apt-get install failed; running apt-get update and trying once more');
  spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env });
  return install();
}

/** The path of `binary`, installing Debian's `aptPackage` first if it is missing. */
export function locateOrInstall(binary: string, aptPackage: string, log: (line: string) => void): string {
  const found = findOnPath(binary);
  if (found) return found;
  if (aptInstall(binary, aptPackage, log)) {
    const installed = findOnPath(binary);
    if (installed) return installed;
  }
  throw new BenchRunError(`${binary} is missing and \`apt-get install -y ${aptPackage}\` did not provide it; install it by hand`);
}
