// CPU list parsing and formatting: known strings, a format∘parse round trip, and garbage rejected.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CpuListError, MAX_CPU, formatCpuList, isSubset, normalizeCpus, parseCpuList, sameCpus } from './cpu-list.js';

function rejects(input: string): void {
  assert.throws(() => parseCpuList(input), (e: unknown) => e instanceof CpuListError && e.code === 'ERR_CPU_LIST', `accepted "${input}"`);
}

describe('parseCpuList', () => {
  it('reads the forms the kernel writes', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList('0\n'), [0]);
    assert.deepEqual(parseCpuList('0-1\n'), [0, 1]);
    assert.deepEqual(parseCpuList('5,1'), [1, 5]);
    assert.deepEqual(parseCpuList('\n', { allowEmpty: true }), []);
  });

  it('rejects malformed lists with a message that says what is wrong', () => {
    for (const bad of ['', '-1', '1-', '3-1', '1,,2', ',1', '1,', 'a', '0x1', '01', '1 ,2', '1-2-3', '0-7:2/4', '1.5', '0-3,2', '1,1', `${MAX_CPU + 1}`, '+1']) {
      rejects(bad);
    }
    assert.throws(() => parseCpuList('3-1'), /runs backwards; write 1-3/);
    assert.throws(() => parseCpuList('0-3,2'), /CPU 2 is listed more than once/);
    assert.throws(() => parseCpuList(''), /empty/);
  });

  it('format∘parse is the identity on canonical strings, and parse∘format on CPU sets', () => {
    const cpuSet = fc.uniqueArray(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 60 });
    fc.assert(fc.property(cpuSet, (cpus) => {
      const text = formatCpuList(cpus);
      const sorted = [...cpus].sort((a, b) => a - b);
      assert.deepEqual(parseCpuList(text), sorted);
      assert.equal(formatCpuList(parseCpuList(text)), text);
      assert.match(text, /^\d+(-\d+)?(,\d+(-\d+)?)*$/);
    }));
  });

  it('never accepts garbage silently: any string either parses to valid CPUs or throws CpuListError', () => {
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => {
      try {
        const cpus = parseCpuList(s);
        assert.ok(cpus.length > 0 && cpus.every((c) => Number.isInteger(c) && c >= 0 && c <= MAX_CPU));
        assert.equal(formatCpuList(cpus), formatCpuList(parseCpuList(formatCpuList(cpus))));
      } catch (e) {
        assert.ok(e instanceof CpuListError, `unexpected error ${String(e)}`);
      }
    }));
  });

  it('rejects strings built from list characters in the wrong shape', () => {
    const token = fc.constantFrom('0', '1', '12', '-', ',', ' ', ':', '/');
    fc.assert(fc.property(fc.array(token, { minLength: 1, maxLength: 8 }), (parts) => {
      const s = parts.join('');
      let ok: number[] | undefined;
      try { ok = parseCpuList(s); } catch (e) { assert.ok(e instanceof CpuListError); }
      if (ok) assert.equal(formatCpuList(ok), formatCpuList(parseCpuList(s.trim())));
    }));
  });
});

describe('formatCpuList', () => {
  it('writes runs the way the kernel does', () => {
    assert.equal(formatCpuList([0, 1, 2, 3, 8, 10, 11]), '0-3,8,10-11');
    assert.equal(formatCpuList([1, 0]), '0-1');
    assert.equal(formatCpuList([]), '');
  });

  it('refuses values that are not CPU numbers', () => {
    for (const bad of [[-1], [1.5], [NaN], [MAX_CPU + 1], [2, 2]]) {
      assert.throws(() => formatCpuList(bad), CpuListError);
    }
  });
});

describe('set helpers', () => {
  it('isSubset and sameCpus', () => {
    assert.ok(isSubset([1], [0, 1]));
    assert.ok(!isSubset([0, 2], [0, 1]));
    assert.ok(sameCpus([1, 0], [0, 1]));
    assert.ok(!sameCpus([0], [0, 1]));
    assert.deepEqual(normalizeCpus([3, 1]), [1, 3]);
  });
});
