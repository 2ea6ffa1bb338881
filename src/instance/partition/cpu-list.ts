// Linux CPU list strings ("0-3,8,10-11"), as sysfs and cgroup cpuset files use them, parsed into
// sorted CPU numbers and formatted back. Pure: no file access. It does not know which CPUs a host has.
// Format: Documentation/admin-guide/cgroup-v1/cpusets.rst and lib/bitmap.c (bitmap_parselist).

/** Highest CPU number we accept: the kernel's largest CONFIG_NR_CPUS is 8192. */
export const MAX_CPU = 8191;

export class CpuListError extends Error {
  readonly code = 'ERR_CPU_LIST';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CpuListError';
  }
}

const NUMBER = /^(0|[1-9][0-9]{0,4})$/;

function parseCpuNumber(token: string, input: string): number {
  if (!NUMBER.test(token)) {
    throw new CpuListError(`CPU list "${input}" is not valid: "${token}" is not a CPU number; write it like 0-3,8,10-11`);
  }
  const n = Number(token);
  if (n > MAX_CPU) throw new CpuListError(`CPU list "${input}" is not valid: CPU ${n} is above the limit of ${MAX_CPU}`);
  return n;
}

/**
 * Parses "0-3,8,10-11" into [0,1,2,3,8,10,11]. One leading or trailing newline/space run is
 * ignored (sysfs files end in "\n"). An empty list is only accepted with `allowEmpty`, because an
 * empty cpuset file is legal but an empty partition is not. Entries may come in any order but may
 * not overlap. The kernel's stride syntax ("0-7:2/4") is refused.
 */
export function parseCpuList(input: string, options: { allowEmpty?: boolean } = {}): number[] {
  if (typeof input !== 'string') throw new CpuListError(`CPU list must be a string, got ${typeof input}`);
  const text = input.trim();
  if (text === '') {
    if (options.allowEmpty) return [];
    throw new CpuListError('CPU list is empty: give at least one CPU, such as 0 or 0-1');
  }
  const seen = new Set<number>();
  for (const entry of text.split(',')) {
    if (entry.includes(':') || entry.includes('/')) {
      throw new CpuListError(`CPU list "${input}" is not valid: the stride form "${entry}" is not supported; list the CPUs`);
    }
    const parts = entry.split('-');
    if (parts.length > 2 || entry === '') {
      throw new CpuListError(`CPU list "${input}" is not valid: "${entry}" is neither a CPU nor a range like 2-5`);
    }
    const first = parseCpuNumber(parts[0]!, input);
    const last = parts.length === 2 ? parseCpuNumber(parts[1]!, input) : first;
    if (last < first) throw new CpuListError(`CPU list "${input}" is not valid: range "${entry}" runs backwards; write ${last}-${first}`);
    for (let cpu = first; cpu <= last; cpu++) {
      if (seen.has(cpu)) throw new CpuListError(`CPU list "${input}" is not valid: CPU ${cpu} is listed more than once`);
      seen.add(cpu);
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/** Checks CPU numbers (integers from 0 to MAX_CPU, no duplicates) and returns them sorted. */
export function normalizeCpus(cpus: readonly number[]): number[] {
  if (!Array.isArray(cpus)) throw new CpuListError(`CPUs must be an array of CPU numbers, got ${typeof cpus}`);
  const seen = new Set<number>();
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu > MAX_CPU) {
      throw new CpuListError(`${String(cpu)} is not a CPU number: use whole numbers from 0 to ${MAX_CPU}`);
    }
    if (seen.has(cpu)) throw new CpuListError(`CPU ${cpu} is listed more than once`);
    seen.add(cpu);
  }
  return [...seen].sort((a, b) => a - b);
}

/** Formats CPU numbers the way the kernel does: sorted, runs of two or more as "a-b". [] gives "". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = normalizeCpus(cpus);
  const out: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** True when every CPU of `inner` is in `outer`. */
export function isSubset(inner: readonly number[], outer: readonly number[]): boolean {
  const set = new Set(outer);
  return inner.every((cpu) => set.has(cpu));
}

/** True when both hold the same CPUs, in any order. */
export function sameCpus(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && isSubset(a, b) && isSubset(b, a);
}
