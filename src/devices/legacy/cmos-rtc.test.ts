import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import type { WallClock } from '../device.js';
import { CmosRtc, type CmosRtcState } from './cmos-rtc.js';
import { DeviceStateError } from './device-state-error.js';

class FixedClock implements WallClock {
  constructor(public ms: number) {}
  nowMs(): number {
    return this.ms;
  }
}

// Tuesday 2024-02-27 21:05:09 UTC.
const T = Date.UTC(2024, 1, 27, 21, 5, 9);

function make(ms = T): { rtc: CmosRtc; clock: FixedClock } {
  const clock = new FixedClock(ms);
  return { rtc: new CmosRtc({ clock }), clock };
}

function read(rtc: CmosRtc, index: number): number {
  rtc.pioWrite(0, Uint8Array.of(index));
  const data = new Uint8Array(1);
  rtc.pioRead(1, data);
  return data[0]!;
}

function write(rtc: CmosRtc, index: number, value: number): void {
  rtc.pioWrite(0, Uint8Array.of(index));
  rtc.pioWrite(1, Uint8Array.of(value));
}

const CLOCK = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32];

describe('CmosRtc', () => {
  it('reads the wall clock in BCD, 24-hour by default', () => {
    const { rtc } = make();
    assert.equal(read(rtc, 0x0b), 0x02);
    assert.deepEqual(CLOCK.map((i) => read(rtc, i)), [0x09, 0x05, 0x21, 0x03, 0x27, 0x02, 0x24, 0x20]);
  });

  it('reads binary when register B bit 2 is set', () => {
    const { rtc } = make();
    write(rtc, 0x0b, 0x06);
    assert.deepEqual(CLOCK.map((i) => read(rtc, i)), [9, 5, 21, 3, 27, 2, 24, 20]);
  });

  it('reads 12-hour time with the PM bit when register B bit 1 is clear', () => {
    const { rtc, clock } = make();
    write(rtc, 0x0b, 0x00);
    assert.equal(read(rtc, 0x04), 0x89); // 9 PM, BCD
    write(rtc, 0x0b, 0x04);
    assert.equal(read(rtc, 0x04), 0x89); // 9 PM, binary
    clock.ms = Date.UTC(2024, 1, 27, 0, 30, 0);
    assert.equal(read(rtc, 0x04), 12); // midnight is 12 AM
    clock.ms = Date.UTC(2024, 1, 27, 12, 30, 0);
    assert.equal(read(rtc, 0x04), 0x80 | 12);
  });

  it('follows the clock on every read', () => {
    const { rtc, clock } = make();
    assert.equal(read(rtc, 0x00), 0x09);
    clock.ms += 50_000;
    assert.equal(read(rtc, 0x00), 0x59);
    assert.equal(read(rtc, 0x02), 0x05);
  });

  it('exposes status registers A (UIP clear), C and D', () => {
    const { rtc } = make();
    assert.equal(read(rtc, 0x0a), 0x26);
    write(rtc, 0x0a, 0xa6);
    assert.equal(read(rtc, 0x0a), 0x26, 'UIP is read-only');
    write(rtc, 0x0c, 0xff);
    write(rtc, 0x0d, 0x00);
    assert.equal(read(rtc, 0x0c), 0);
    assert.equal(read(rtc, 0x0d), 0x80);
  });

  it('ignores guest writes to the clock registers', () => {
    const { rtc } = make();
    for (const i of CLOCK) write(rtc, i, 0x11);
    assert.deepEqual(CLOCK.map((i) => read(rtc, i)), [0x09, 0x05, 0x21, 0x03, 0x27, 0x02, 0x24, 0x20]);
    assert.equal(rtc.metrics.ignoredWrites, CLOCK.length);
  });

  it('stores the rest of CMOS, including the alarm registers', () => {
    const { rtc } = make();
    for (const i of [0x01, 0x03, 0x05, 0x0e, 0x31, 0x33, 0x7f]) {
      write(rtc, i, i ^ 0xa5);
      assert.equal(read(rtc, i), i ^ 0xa5);
    }
  });

  it('takes the index from bits 0-6 and the NMI mask from bit 7', () => {
    const { rtc } = make();
    write(rtc, 0x10, 0x42);
    rtc.pioWrite(0, Uint8Array.of(0x90));
    assert.equal(rtc.nmiDisabled, true);
    const data = new Uint8Array(1);
    rtc.pioRead(1, data);
    assert.equal(data[0], 0x42);
    rtc.pioWrite(0, Uint8Array.of(0x10));
    assert.equal(rtc.nmiDisabled, false);
    rtc.pioRead(0, data);
    assert.equal(data[0], 0xff);
  });

  it('does not save the time: a restored RTC reads its new wall clock', () => {
    const { rtc } = make();
    write(rtc, 0x40, 0x99);
    const later = new FixedClock(Date.UTC(2031, 6, 4, 8, 0, 1));
    const restored = CmosRtc.restore({ clock: later }, JSON.parse(JSON.stringify(rtc.saveState())) as CmosRtcState);
    assert.equal(read(restored, 0x09), 0x31);
    assert.equal(read(restored, 0x00), 0x01);
    assert.equal(read(restored, 0x40), 0x99);
  });
});

type Access = { write: boolean; offset: number; bytes: Uint8Array };
const accessArb: fc.Arbitrary<Access> = fc.record({
  write: fc.boolean(),
  offset: fc.integer({ min: 0, max: 1 }),
  bytes: fc.constantFrom(1, 2, 4).chain((w) => fc.uint8Array({ minLength: w, maxLength: w })),
});

function apply(rtc: CmosRtc, ops: readonly Access[]): number[] {
  const seen: number[] = [];
  for (const { write, offset, bytes } of ops) {
    const data = Uint8Array.from(bytes);
    if (write) rtc.pioWrite(offset, data);
    else {
      rtc.pioRead(offset, data);
      seen.push(...data);
    }
  }
  return seen;
}

describe('CmosRtc save and restore', () => {
  it('round-trips through JSON and behaves the same afterwards', () => {
    fc.assert(
      fc.property(
        fc.array(accessArb, { maxLength: 120 }),
        fc.array(accessArb, { maxLength: 60 }),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        (before, after, ms) => {
          const a = make(ms);
          apply(a.rtc, before);
          const saved = a.rtc.saveState();
          const b = CmosRtc.restore({ clock: a.clock }, JSON.parse(JSON.stringify(saved)) as CmosRtcState);
          assert.deepEqual(b.saveState(), saved);
          assert.deepEqual(apply(b, after), apply(a.rtc, after));
          assert.deepEqual(b.saveState(), a.rtc.saveState());
        },
      ),
    );
  });

  it('never throws on random accesses, widths and clocks, even a broken clock', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ write: fc.boolean(), offset: fc.integer({ min: 0, max: 4 }), bytes: fc.uint8Array({ maxLength: 4 }) }),
          { maxLength: 200 },
        ),
        fc.oneof(fc.double(), fc.integer()),
        (ops, ms) => {
          apply(make(ms).rtc, ops);
        },
      ),
    );
  });

  it('rejects malformed state with DeviceStateError', () => {
    const good = (): Record<string, unknown> => ({ ...make().rtc.saveState() });
    const cases: unknown[] = [
      null,
      [],
      { ...good(), cmos: new Array<number>(127).fill(0) },
      { ...good(), cmos: new Array<number>(129).fill(0) },
      { ...good(), cmos: [...new Array<number>(127).fill(0), 256] },
      { ...good(), cmos: 'AAAA' },
      { ...good(), index: 128 },
      { ...good(), index: -1 },
      { ...good(), index: undefined },
      { ...good(), nmiDisabled: 'false' },
    ];
    for (const state of cases) {
      assert.throws(
        () => CmosRtc.restore({ clock: new FixedClock(T) }, state as CmosRtcState),
        (err: unknown) => err instanceof DeviceStateError && err.code === 'ERR_DEVICE_STATE',
        JSON.stringify(state),
      );
    }
  });
});
