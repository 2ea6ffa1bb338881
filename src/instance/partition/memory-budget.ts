// The instance's memory budget: how many MiB of guest RAM its VMs may hold, and who holds what.
// Pure bookkeeping: it does not allocate, limit or measure memory (the memory cgroup is not used).

export class BudgetError extends Error {
  constructor(readonly code: 'ERR_BUDGET_EXCEEDED' | 'ERR_BUDGET_SHRINK' | 'ERR_BUDGET_INPUT' | 'ERR_BUDGET_UNKNOWN_ID', message: string) {
    super(message);
    this.name = 'BudgetError';
  }
}

export class BudgetExceededError extends BudgetError {
  constructor(readonly neededMib: number, readonly freeMib: number, readonly totalMib: number) {
    super(
      'ERR_BUDGET_EXCEEDED',
      `VM needs ${neededMib} MiB but only ${freeMib} MiB of the ${totalMib} MiB budget is free; ` +
        'stop a VM or start the daemon with a larger --mem-budget',
    );
    this.name = 'BudgetExceededError';
  }
}

/** Plain data, safe to serialize. */
export interface MemoryBudgetSnapshot {
  totalMib: number;
  usedMib: number;
  freeMib: number;
  reservations: Array<{ id: string; mib: number }>;
}

/** Largest budget we accept: 16 TiB, well inside exact integer arithmetic. */
export const MAX_BUDGET_MIB = 16 * 1024 * 1024;

function checkMib(what: string, mib: number, min: number): void {
  if (!Number.isInteger(mib) || mib < min || mib > MAX_BUDGET_MIB) {
    throw new BudgetError('ERR_BUDGET_INPUT', `${what} ${String(mib)} MiB is not valid: use a whole number of MiB from ${min} to ${MAX_BUDGET_MIB}`);
  }
}

export class MemoryBudget {
  private readonly held = new Map<string, number>();
  private usedMib = 0;

  constructor(private totalMib: number) {
    checkMib('memory budget', totalMib, 0);
  }

  get total(): number { return this.totalMib; }
  get used(): number { return this.usedMib; }
  /** Never negative, even after a forced resize below what is in use. */
  get free(): number { return Math.max(0, this.totalMib - this.usedMib); }

  has(id: string): boolean { return this.held.has(id); }

  /** Takes `mib` for `id`, or throws BudgetExceededError and changes nothing. */
  reserve(id: string, mib: number): void {
    if (typeof id !== 'string' || id === '') throw new BudgetError('ERR_BUDGET_INPUT', 'a reservation needs a non-empty id (the VM name)');
    checkMib(`reservation for "${id}" of`, mib, 1);
    if (this.held.has(id)) {
      throw new BudgetError('ERR_BUDGET_INPUT', `"${id}" already holds ${this.held.get(id)} MiB of the budget; release it before reserving again`);
    }
    if (mib > this.free) throw new BudgetExceededError(mib, this.free, this.totalMib);
    this.held.set(id, mib);
    this.usedMib += mib;
  }

  /** Gives back what `id` holds and returns how much that was. */
  release(id: string): number {
    const mib = this.held.get(id);
    if (mib === undefined) throw new BudgetError('ERR_BUDGET_UNKNOWN_ID', `"${id}" holds no memory budget; nothing to release`);
    this.held.delete(id);
    this.usedMib -= mib;
    return mib;
  }

  /**
   * Changes the total. Going below what is in use is refused unless `force` is set; a forced
   * budget is overcommitted (free reads 0) until enough is released.
   */
  resize(totalMib: number, options: { force?: boolean } = {}): void {
    checkMib('memory budget', totalMib, 0);
    if (totalMib < this.usedMib && !options.force) {
      throw new BudgetError(
        'ERR_BUDGET_SHRINK',
        `cannot shrink the memory budget to ${totalMib} MiB: VMs hold ${this.usedMib} MiB; stop VMs first or force the resize`,
      );
    }
    this.totalMib = totalMib;
  }

  snapshot(): MemoryBudgetSnapshot {
    return {
      totalMib: this.totalMib,
      usedMib: this.usedMib,
      freeMib: this.free,
      // Code-point order, not localeCompare (see VmRegistry.list).
      reservations: [...this.held].map(([id, mib]) => ({ id, mib })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    };
  }
}
