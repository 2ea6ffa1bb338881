import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { DeviceStateError } from './device-state-error.js';
import { I8042, type I8042State, I8042_COMMAND_OFFSET as CMD, I8042_DATA_OFFSET as DATA } from './i8042.js';

function make(): { ctl: I8042; resets: () => number } {
  let resets = 0;
  const ctl = new I8042({ onReset: () => resets++ });
  return { ctl, resets: () => resets };
}

function rd(ctl: I8042, offset: number): number {
  const data = new Uint8Array(1);
  ctl.pioRead(offset, data);
  return data[0]!;
}

function wr(ctl: I8042, offset: number, value: number): void {
  ctl.pioWrite(offset, Uint8Array.of(value));
}

/** Sends a controller command and returns its reply, as Linux's i8042_command does. */
function command(ctl: I8042, cmd: number): number | undefined {
  wr(ctl, CMD, cmd);
  return rd(ctl, CMD) & 0x01 ? rd(ctl, DATA) : undefined;
}

describe('I8042', () => {
  it('calls onReset for command 0xfe', () => {
    const { ctl, resets } = make();
    wr(ctl, CMD, 0xfe);
    assert.equal(resets(), 1);
    assert.equal(ctl.metrics.resetRequests, 1);
  });

  it('resets through any pulse command with bit 0 clear, or the output port reset line', () => {
    const { ctl, resets } = make();
    wr(ctl, CMD, 0xff); // pulses nothing
    assert.equal(resets(), 0);
    wr(ctl, CMD, 0xf0);
    assert.equal(resets(), 1);
    wr(ctl, CMD, 0xd1);
    wr(ctl, DATA, 0x03);
    assert.equal(resets(), 1);
    assert.equal(command(ctl, 0xd0), 0x03);
    wr(ctl, CMD, 0xd1);
    wr(ctl, DATA, 0x02);
    assert.equal(resets(), 2);
  });

  it('answers the self-test, interface tests and reports no aux port', () => {
    const { ctl } = make();
    assert.equal(command(ctl, 0xaa), 0x55);
    assert.equal(command(ctl, 0xab), 0x00);
    const aux = command(ctl, 0xa9);
    assert.ok(aux !== undefined && aux !== 0 && aux !== 0xfa && aux !== 0xff);
  });

  it('reads and writes the command byte', () => {
    const { ctl } = make();
    assert.equal(command(ctl, 0x20), 0x45);
    wr(ctl, CMD, 0x60);
    wr(ctl, DATA, 0x74);
    assert.equal(command(ctl, 0x20), 0x74);
    wr(ctl, CMD, 0x60);
    wr(ctl, DATA, 0xff);
    assert.equal(command(ctl, 0x20), 0x77, 'reserved bits 3 and 7 stay clear');
    wr(ctl, CMD, 0xa8);
    wr(ctl, CMD, 0xae);
    assert.equal(command(ctl, 0x20), 0x47);
    wr(ctl, CMD, 0xa7);
    wr(ctl, CMD, 0xad);
    assert.equal(command(ctl, 0x20), 0x77);
  });

  it('keeps status bits consistent: OBF, system flag, last-write-was-command', () => {
    const { ctl } = make();
    assert.equal(rd(ctl, CMD), 0x14);
    wr(ctl, CMD, 0x20);
    assert.equal(rd(ctl, CMD), 0x1d);
    rd(ctl, DATA);
    assert.equal(rd(ctl, CMD), 0x1c);
    wr(ctl, DATA, 0xf2); // a byte for the absent keyboard
    assert.equal(rd(ctl, CMD), 0x14);
    assert.equal(ctl.metrics.ignoredWrites, 1);
  });

  it('lets Linux flush the output buffer: it empties after one read', () => {
    const { ctl } = make();
    command(ctl, 0xaa);
    let reads = 0;
    while (rd(ctl, CMD) & 0x01 && reads < 16) {
      rd(ctl, DATA);
      reads++;
    }
    assert.equal(reads, 0, 'command() already read the reply');
    wr(ctl, CMD, 0xaa);
    while (rd(ctl, CMD) & 0x01 && reads < 16) {
      rd(ctl, DATA);
      reads++;
    }
    assert.equal(reads, 1);
  });

  it('reads 0xff at offsets that are not ports and ignores writes there', () => {
    const { ctl, resets } = make();
    for (const offset of [1, 2, 3]) {
      assert.equal(rd(ctl, offset), 0xff);
      wr(ctl, offset, 0xfe);
    }
    assert.equal(resets(), 0);
  });

  it('treats a wide access as one access of its first byte', () => {
    const { ctl, resets } = make();
    ctl.pioWrite(CMD, Uint8Array.of(0xfe, 0x00));
    assert.equal(resets(), 1);
    const data = new Uint8Array(4).fill(0xee);
    ctl.pioRead(CMD, data);
    assert.deepEqual([...data], [0x1c, 0, 0, 0]);
  });
});

type Access = { write: boolean; offset: number; bytes: Uint8Array };
const accessArb: fc.Arbitrary<Access> = fc.record({
  write: fc.boolean(),
  offset: fc.integer({ min: 0, max: 4 }),
  bytes: fc.constantFrom(1, 2, 4).chain((w) => fc.uint8Array({ minLength: w, maxLength: w })),
});
// Commands are sparse among random bytes; bias writes towards the ones the device knows.
const commandArb: fc.Arbitrary<Access> = fc
  .constantFrom(0x20, 0x60, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae, 0xd0, 0xd1, 0xfe, 0x00)
  .map((c) => ({ write: true, offset: CMD, bytes: Uint8Array.of(c) }));
const opsArb = fc.array(fc.oneof(accessArb, commandArb), { maxLength: 80 });

function apply(ctl: I8042, ops: readonly Access[]): number[] {
  const seen: number[] = [];
  for (const { write, offset, bytes } of ops) {
    const data = Uint8Array.from(bytes);
    if (write) ctl.pioWrite(offset, data);
    else {
      ctl.pioRead(offset, data);
      seen.push(...data);
    }
  }
  return seen;
}

describe('I8042 save and restore', () => {
  it('round-trips through JSON and behaves the same afterwards', () => {
    fc.assert(
      fc.property(opsArb, opsArb, (before, after) => {
        const a = make();
        apply(a.ctl, before);
        const saved = a.ctl.saveState();
        const b = I8042.restore({ onReset: () => {} }, JSON.parse(JSON.stringify(saved)) as I8042State);
        assert.deepEqual(b.saveState(), saved);
        assert.deepEqual(apply(b, after), apply(a.ctl, after));
        assert.deepEqual(b.saveState(), a.ctl.saveState());
      }),
    );
  });

  it('never throws on random accesses of any width at any offset', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ write: fc.boolean(), offset: fc.integer({ min: 0, max: 8 }), bytes: fc.uint8Array({ maxLength: 4 }) }),
          { maxLength: 200 },
        ),
        (ops) => {
          apply(make().ctl, ops);
        },
      ),
    );
  });

  it('rejects malformed state with DeviceStateError', () => {
    const good = (): Record<string, unknown> => ({ ...make().ctl.saveState() });
    const cases: unknown[] = [
      undefined,
      42,
      { ...good(), commandByte: 0x80 },
      { ...good(), commandByte: undefined },
      { ...good(), outputByte: 256 },
      { ...good(), outputFull: 1 },
      { ...good(), pendingCommand: 0x20 },
      { ...good(), pendingCommand: -1 },
      { ...good(), lastWriteWasCommand: null },
      { ...good(), outputPort: 3.5 },
    ];
    for (const state of cases) {
      assert.throws(
        () => I8042.restore({ onReset: () => {} }, state as I8042State),
        (err: unknown) => err instanceof DeviceStateError && err.code === 'ERR_DEVICE_STATE',
        JSON.stringify(state),
      );
    }
  });
});
