import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { DebugExit, type DebugExitState } from './debug-exit.js';
import { DeviceStateError } from './device-state-error.js';

function make(): { dev: DebugExit; exits: number[] } {
  const exits: number[] = [];
  return { dev: new DebugExit({ onExit: (status) => exits.push(status) }), exits };
}

describe('DebugExit', () => {
  it('reports the low byte of 1, 2 and 4-byte writes', () => {
    const { dev, exits } = make();
    dev.pioWrite(0, Uint8Array.of(0x2a));
    dev.pioWrite(0, Uint8Array.of(0x01, 0x02));
    dev.pioWrite(0, Uint8Array.of(0xff, 0x12, 0x34, 0x56));
    assert.deepEqual(exits, [0x2a, 0x01, 0xff]);
    assert.equal(dev.metrics.exits, 3);
  });

  it('ignores other widths and offsets', () => {
    const { dev, exits } = make();
    dev.pioWrite(0, new Uint8Array(0));
    dev.pioWrite(0, new Uint8Array(3));
    dev.pioWrite(0, new Uint8Array(8));
    dev.pioWrite(1, Uint8Array.of(1));
    assert.deepEqual(exits, []);
    assert.equal(dev.metrics.ignoredWrites, 4);
  });

  it('reads 0 at any width', () => {
    const { dev } = make();
    const data = new Uint8Array(4).fill(0xee);
    dev.pioRead(0, data);
    assert.deepEqual([...data], [0, 0, 0, 0]);
  });

  it('never throws on random accesses', () => {
    const accessArb = fc.record({
      write: fc.boolean(),
      offset: fc.integer({ min: 0, max: 3 }),
      bytes: fc.uint8Array({ maxLength: 8 }),
    });
    fc.assert(
      fc.property(fc.array(accessArb), (ops) => {
        const { dev, exits } = make();
        for (const { write, offset, bytes } of ops) {
          if (write) dev.pioWrite(offset, bytes);
          else dev.pioRead(offset, bytes);
        }
        assert.ok(exits.every((s) => Number.isInteger(s) && s >= 0 && s <= 0xff));
      }),
    );
  });

  it('saves an empty object, restores from it, and rejects non-objects', () => {
    const { dev } = make();
    const saved = dev.saveState();
    assert.deepEqual(saved, {});
    const exits: number[] = [];
    const json = JSON.parse(JSON.stringify(saved)) as DebugExitState;
    const restored = DebugExit.restore({ onExit: (s) => exits.push(s) }, json);
    restored.pioWrite(0, Uint8Array.of(7));
    assert.deepEqual(exits, [7]);
    for (const bad of [null, [], 'x', 3, undefined]) {
      assert.throws(() => DebugExit.restore({ onExit: () => {} }, bad as unknown as DebugExitState), DeviceStateError);
    }
  });
});
