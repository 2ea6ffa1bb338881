// The memory budget as pure bookkeeping: messages, resize rules, and random reserve/release runs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BudgetError, BudgetExceededError, MemoryBudget } from './memory-budget.js';

describe('MemoryBudget', () => {
  it('reserves and releases, and says what to do when full', () => {
    const b = new MemoryBudget(1024);
    b.reserve('a', 724);
    assert.equal(b.used, 724);
    assert.equal(b.free, 300);
    assert.throws(() => b.reserve('b', 512), (e: unknown) => {
      assert.ok(e instanceof BudgetExceededError);
      assert.equal(e.code, 'ERR_BUDGET_EXCEEDED');
      assert.equal(e.message, 'VM needs 512 MiB but only 300 MiB of the 1024 MiB budget is free; stop a VM or start the daemon with a larger --mem-budget');
      return true;
    });
    assert.equal(b.used, 724, 'a refused reservation changes nothing');
    assert.equal(b.release('a'), 724);
    assert.equal(b.free, 1024);
    b.reserve('b', 512);
    assert.deepEqual(b.snapshot(), { totalMib: 1024, usedMib: 512, freeMib: 512, reservations: [{ id: 'b', mib: 512 }] });
  });

  it('refuses bad input with stable codes', () => {
    const b = new MemoryBudget(100);
    const code = (fn: () => unknown, c: string) => assert.throws(fn, (e: unknown) => e instanceof BudgetError && e.code === c);
    code(() => new MemoryBudget(-1), 'ERR_BUDGET_INPUT');
    code(() => new MemoryBudget(1.5), 'ERR_BUDGET_INPUT');
    code(() => b.reserve('x', 0), 'ERR_BUDGET_INPUT');
    code(() => b.reserve('', 1), 'ERR_BUDGET_INPUT');
    code(() => b.reserve('x', NaN), 'ERR_BUDGET_INPUT');
    b.reserve('x', 10);
    code(() => b.reserve('x', 10), 'ERR_BUDGET_INPUT');
    code(() => b.release('nope'), 'ERR_BUDGET_UNKNOWN_ID');
  });

  it('refuses to shrink below what is used unless forced', () => {
    const b = new MemoryBudget(1024);
    b.reserve('vm', 600);
    assert.throws(() => b.resize(512), (e: unknown) => e instanceof BudgetError && e.code === 'ERR_BUDGET_SHRINK' && /VMs hold 600 MiB/.test(e.message));
    assert.equal(b.total, 1024);
    b.resize(600);
    assert.equal(b.free, 0);
    b.resize(512, { force: true });
    assert.equal(b.total, 512);
    assert.equal(b.free, 0, 'an overcommitted budget reads 0 free, never negative');
    assert.throws(() => b.reserve('more', 1), BudgetExceededError);
    b.release('vm');
    assert.equal(b.free, 512);
  });

  it('random reserve/release/resize sequences keep 0 <= used <= total and used = sum of reservations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('reserve' as const), id: fc.integer({ min: 0, max: 7 }), mib: fc.integer({ min: 1, max: 600 }) }),
      fc.record({ kind: fc.constant('release' as const), id: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('resize' as const), mib: fc.integer({ min: 0, max: 2048 }) }),
    );
    fc.assert(fc.property(fc.integer({ min: 0, max: 2048 }), fc.array(op, { maxLength: 60 }), (total, ops) => {
      const b = new MemoryBudget(total);
      const model = new Map<string, number>();
      for (const o of ops) {
        try {
          if (o.kind === 'reserve') { b.reserve(`vm${o.id}`, o.mib); model.set(`vm${o.id}`, o.mib); }
          else if (o.kind === 'release') { b.release(`vm${o.id}`); model.delete(`vm${o.id}`); }
          else b.resize(o.mib);
        } catch (e) {
          assert.ok(e instanceof BudgetError, `unexpected ${String(e)}`);
        }
        const sum = [...model.values()].reduce((a, v) => a + v, 0);
        assert.equal(b.used, sum);
        assert.ok(b.used >= 0 && b.used <= b.total, `used ${b.used} total ${b.total}`);
        assert.equal(b.free, b.total - b.used);
        assert.equal(b.snapshot().reservations.length, model.size);
      }
    }));
  });
});
