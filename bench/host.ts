// Describes the machine a benchmark ran on (kernel, CPU model, CPU count, Node version) for its JSON.
// It reads only; it never changes the host.

import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface HostInfo {
  kernelRelease: string;
  cpuModel: string;
  nproc: number;
  node: string;
}

function cpuModelFromProc(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    const model = line?.split(':').slice(1).join(':').trim();
    if (model) return model;
  } catch {
    // Fall through to os.cpus(), which reads the same file but may be empty in containers.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export function hostInfo(): HostInfo {
  return {
    kernelRelease: os.release(),
    cpuModel: cpuModelFromProc(),
    nproc: os.availableParallelism(),
    node: process.version,
  };
}
