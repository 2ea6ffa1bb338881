import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MachineConfigError, validateMachineConfig, type MachineConfig } from './machine-config.js';

const base: MachineConfig = { name: 'vm', kernel: new Uint8Array([1]), cmdline: '', memSizeMib: 64, vcpus: 1 };

test('a good config gets its defaults', () => {
  const c = validateMachineConfig(base);
  assert.equal(c.coalesceConsole, true);
  assert.equal(c.entry, 'auto');
  assert.equal(c.prefault, 'background');
});

test('sizes, counts, names and CPU lists outside their bounds are rejected with ERR_VM_CONFIG', () => {
  for (const bad of [{ memSizeMib: 0 }, { memSizeMib: 1.5 }, { memSizeMib: 1 << 30 }, { vcpus: 0 }, { vcpus: 33 }, { vcpus: 1.5 },
    { name: '' }, { name: 'a/b' }, { name: 'x'.repeat(65) }, { kernel: new Uint8Array(0) }, { cpus: [] }, { cpus: [-1] }, { cpus: [0.5] }]) {
    assert.throws(() => validateMachineConfig({ ...base, ...bad }), (e: unknown) => e instanceof MachineConfigError && e.code === 'ERR_VM_CONFIG', JSON.stringify(bad));
  }
});

test('random numbers never get past validation as something else', () => {
  fc.assert(fc.property(fc.double(), fc.double(), (mem, vcpus) => {
    try {
      const c = validateMachineConfig({ ...base, memSizeMib: mem, vcpus });
      assert.ok(Number.isInteger(c.memSizeMib) && c.memSizeMib >= 2 && Number.isInteger(c.vcpus) && c.vcpus >= 1 && c.vcpus <= 32);
    } catch (e) {
      assert.ok(e instanceof MachineConfigError);
    }
  }));
});
