import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import type { ByteSink, IrqLine } from '../device.js';
import { DeviceStateError } from './device-state-error.js';
import {
  Serial16550,
  type Serial16550State,
  UART_FCR,
  UART_IER,
  UART_IIR,
  UART_LCR,
  UART_LSR,
  UART_MCR,
  UART_MSR,
  UART_RX,
  UART_SCR,
  UART_TX,
} from './serial-16550.js';

class Recorder implements IrqLine, ByteSink {
  pulses = 0;
  out: number[] = [];
  setLevel(): void {
    throw new Error('the 16550 is an edge device');
  }
  pulse(): void {
    this.pulses++;
  }
  write(bytes: Uint8Array): void {
    this.out.push(...bytes);
  }
}

function make(rxFifoCapacity?: number): { uart: Serial16550; rec: Recorder } {
  const rec = new Recorder();
  return { uart: new Serial16550({ irq: rec, sink: rec, rxFifoCapacity }), rec };
}

function rd(uart: Serial16550, offset: number): number {
  const data = new Uint8Array(1);
  uart.pioRead(offset, data);
  return data[0]!;
}

function wr(uart: Serial16550, offset: number, value: number): void {
  uart.pioWrite(offset, Uint8Array.of(value));
}

describe('Serial16550 registers', () => {
  it('starts with an empty receiver and an always-empty transmitter', () => {
    const { uart } = make();
    assert.equal(rd(uart, UART_LSR), 0x60);
    assert.equal(rd(uart, UART_IIR), 0x01);
    assert.equal(rd(uart, UART_MSR), 0xb0);
    assert.equal(rd(uart, UART_RX), 0);
  });

  it('sends every THR write to the sink, using only the first byte of a wide access', () => {
    const { uart, rec } = make();
    wr(uart, UART_TX, 0x41);
    uart.pioWrite(UART_TX, Uint8Array.of(0x42, 0x43, 0x44, 0x45));
    assert.deepEqual(rec.out, [0x41, 0x42]);
    assert.equal(uart.metrics.bytesOut, 2);
    assert.equal(rd(uart, UART_LSR) & 0x60, 0x60);
  });

  it('switches offsets 0 and 1 to the divisor latch while DLAB is set', () => {
    const { uart, rec } = make();
    wr(uart, UART_IER, 0x05);
    wr(uart, UART_LCR, 0x83);
    wr(uart, UART_TX, 0x01);
    wr(uart, UART_IER, 0x02);
    assert.equal(rd(uart, UART_RX), 0x01);
    assert.equal(rd(uart, UART_IER), 0x02);
    assert.deepEqual(rec.out, [], 'a DLL write is not a transmit');
    wr(uart, UART_LCR, 0x03);
    assert.equal(rd(uart, UART_IER), 0x05);
    assert.equal(rd(uart, UART_LCR), 0x03);
  });

  it('keeps IER bits 4-7 at zero, as Linux probes for XScale UARTs', () => {
    const { uart } = make();
    wr(uart, UART_IER, 0xff);
    assert.equal(rd(uart, UART_IER), 0x0f);
  });

  it('reports FIFOs in IIR once enabled and clears the receive FIFO on request', () => {
    const { uart } = make();
    wr(uart, UART_FCR, 0x01);
    assert.equal(rd(uart, UART_IIR), 0xc1);
    uart.enqueueInput(Uint8Array.of(1, 2, 3));
    wr(uart, UART_FCR, 0x03);
    assert.equal(rd(uart, UART_LSR) & 0x01, 0);
    assert.equal(uart.rxPending, 0);
  });

  it('stores the scratch register', () => {
    const { uart } = make();
    wr(uart, UART_SCR, 0x5a);
    assert.equal(rd(uart, UART_SCR), 0x5a);
  });

  it('reads host input in order and reflects it in LSR DR', () => {
    const { uart } = make();
    uart.enqueueInput(Uint8Array.of(0x68, 0x69));
    assert.equal(rd(uart, UART_LSR) & 0x01, 0x01);
    assert.equal(rd(uart, UART_RX), 0x68);
    assert.equal(rd(uart, UART_RX), 0x69);
    assert.equal(rd(uart, UART_LSR) & 0x01, 0);
    assert.equal(uart.metrics.bytesIn, 2);
  });

  it('loops THR back to the receiver in loopback mode and mirrors MCR in MSR', () => {
    const { uart, rec } = make();
    wr(uart, UART_MCR, 0x1a); // LOOP | OUT2 | RTS: what Linux's autoconfig writes
    assert.equal(rd(uart, UART_MSR) & 0xf0, 0x90);
    wr(uart, UART_TX, 0x55);
    assert.deepEqual(rec.out, []);
    assert.equal(rd(uart, UART_RX), 0x55);
    wr(uart, UART_MCR, 0x15);
    assert.equal(rd(uart, UART_MSR) & 0xf0, 0x60);
  });

  it('drops and counts input beyond the FIFO bound and flags an overrun until LSR is read', () => {
    const { uart } = make(4);
    uart.enqueueInput(Uint8Array.of(1, 2, 3, 4, 5, 6));
    assert.equal(uart.metrics.overflowDrops, 2);
    assert.equal(uart.metrics.bytesIn, 4);
    assert.equal(rd(uart, UART_LSR), 0x63);
    assert.equal(rd(uart, UART_LSR), 0x61);
    assert.deepEqual([1, 2, 3, 4].map(() => rd(uart, UART_RX)), [1, 2, 3, 4]);
  });

  it('keeps order across ring wrap-around', () => {
    const { uart } = make(3);
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      uart.enqueueInput(Uint8Array.of(i * 2, i * 2 + 1));
      seen.push(rd(uart, UART_RX), rd(uart, UART_RX));
    }
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i));
    assert.equal(uart.metrics.overflowDrops, 0);
  });

  it('rejects a bad FIFO capacity', () => {
    assert.throws(() => make(0), RangeError);
    assert.throws(() => make(1.5), RangeError);
  });
});

describe('Serial16550 interrupts', () => {
  it('raises THR empty when enabled, clears it on an IIR read, and raises it after each THR write', () => {
    const { uart, rec } = make();
    wr(uart, UART_IER, 0x02);
    assert.equal(rec.pulses, 1);
    assert.equal(rd(uart, UART_IIR), 0x02);
    assert.equal(rd(uart, UART_IIR), 0x01);
    wr(uart, UART_TX, 0x41);
    assert.equal(rec.pulses, 2);
    assert.equal(rd(uart, UART_IIR), 0x02);
    wr(uart, UART_IER, 0x02); // already enabled: no new edge
    assert.equal(rec.pulses, 2);
  });

  it('raises nothing while interrupts are disabled', () => {
    const { uart, rec } = make();
    wr(uart, UART_TX, 0x41);
    uart.enqueueInput(Uint8Array.of(1));
    assert.equal(rec.pulses, 0);
    assert.equal(rd(uart, UART_IIR), 0x01);
  });

  it('raises received-data on input, and on enabling it with data waiting', () => {
    const { uart, rec } = make();
    uart.enqueueInput(Uint8Array.of(7));
    wr(uart, UART_IER, 0x01);
    assert.equal(rec.pulses, 1);
    uart.enqueueInput(Uint8Array.of(8));
    assert.equal(rec.pulses, 2);
    uart.enqueueInput(new Uint8Array(0));
    assert.equal(rec.pulses, 2);
    assert.equal(rd(uart, UART_IIR), 0x04);
    rd(uart, UART_RX);
    rd(uart, UART_RX);
    assert.equal(rd(uart, UART_IIR), 0x01, 'data-ready clears when the FIFO empties');
  });

  it('reports the highest-priority condition: line status, then data, then THR empty', () => {
    const { uart } = make(1);
    wr(uart, UART_IER, 0x07);
    uart.enqueueInput(Uint8Array.of(1, 2));
    assert.equal(rd(uart, UART_IIR), 0x06);
    rd(uart, UART_LSR);
    assert.equal(rd(uart, UART_IIR), 0x04);
    rd(uart, UART_RX);
    assert.equal(rd(uart, UART_IIR), 0x02);
    assert.equal(rd(uart, UART_IIR), 0x01);
  });

  it('does not acknowledge THR empty when IIR reports something else', () => {
    const { uart } = make();
    wr(uart, UART_IER, 0x03);
    uart.enqueueInput(Uint8Array.of(1));
    assert.equal(rd(uart, UART_IIR), 0x04);
    rd(uart, UART_RX);
    assert.equal(rd(uart, UART_IIR), 0x02);
  });

  it('raises received-data for a looped-back byte', () => {
    const { uart, rec } = make();
    wr(uart, UART_MCR, 0x10);
    wr(uart, UART_IER, 0x01);
    wr(uart, UART_TX, 0x33);
    assert.equal(rec.pulses, 1);
    assert.equal(rd(uart, UART_IIR), 0x04);
  });
});

type Op =
  | { kind: 'read'; offset: number; width: number }
  | { kind: 'write'; offset: number; bytes: number[] }
  | { kind: 'input'; bytes: number[] };

const widthArb = fc.constantFrom(1, 2, 4);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('read' as const), offset: fc.integer({ min: 0, max: 7 }), width: widthArb }),
  fc.record({
    kind: fc.constant('write' as const),
    offset: fc.integer({ min: 0, max: 7 }),
    bytes: widthArb.chain((w) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: w, maxLength: w })),
  }),
  fc.record({
    kind: fc.constant('input' as const),
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }),
  }),
);

/** Applies ops; returns everything the guest could observe (reads), in order. */
function apply(uart: Serial16550, ops: readonly Op[]): number[] {
  const seen: number[] = [];
  for (const op of ops) {
    if (op.kind === 'read') {
      const data = new Uint8Array(op.width);
      uart.pioRead(op.offset, data);
      seen.push(...data);
    } else if (op.kind === 'write') {
      uart.pioWrite(op.offset, Uint8Array.from(op.bytes));
    } else {
      uart.enqueueInput(Uint8Array.from(op.bytes));
    }
  }
  return seen;
}

describe('Serial16550 save and restore', () => {
  it('round-trips through JSON and behaves the same afterwards', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), fc.array(opArb, { maxLength: 40 }), (before, after) => {
        const a = make(32);
        apply(a.uart, before);
        const saved = a.uart.saveState();
        const json = JSON.parse(JSON.stringify(saved)) as Serial16550State;
        const rec = new Recorder();
        const b = Serial16550.restore({ irq: rec, sink: rec, rxFifoCapacity: 32 }, json);
        assert.deepEqual(b.saveState(), saved);
        const pulsesBefore = a.rec.pulses;
        const outBefore = a.rec.out.length;
        assert.deepEqual(apply(b, after), apply(a.uart, after));
        assert.deepEqual(b.saveState(), a.uart.saveState());
        assert.equal(rec.pulses, a.rec.pulses - pulsesBefore);
        assert.deepEqual(rec.out, a.rec.out.slice(outBefore));
      }),
    );
  });

  it('never throws on random accesses of any width at any offset', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset: fc.integer({ min: 0, max: 15 }),
            bytes: fc.uint8Array({ minLength: 0, maxLength: 4 }),
          }),
          { maxLength: 200 },
        ),
        (accesses) => {
          const { uart } = make(8);
          for (const { write, offset, bytes } of accesses) {
            if (write) uart.pioWrite(offset, bytes);
            else uart.pioRead(offset, bytes);
          }
        },
      ),
    );
  });

  const good = (): Record<string, unknown> => ({ ...make().uart.saveState() });

  it('rejects malformed state with DeviceStateError', () => {
    const cases: unknown[] = [
      null,
      [],
      'state',
      { ...good(), ier: undefined },
      { ...good(), ier: 0x10 },
      { ...good(), lcr: 256 },
      { ...good(), lcr: -1 },
      { ...good(), scr: 1.5 },
      { ...good(), mcr: 0x20 },
      { ...good(), fcr: 0x02 },
      { ...good(), dll: '12' },
      { ...good(), overrun: 0 },
      { ...good(), thrEmptyPending: 'yes' },
      { ...good(), rxFifo: 'abc' },
      { ...good(), rxFifo: [1, 2, 300] },
      { ...good(), rxFifo: new Array<number>(65).fill(0) },
    ];
    for (const state of cases) {
      const rec = new Recorder();
      assert.throws(
        () => Serial16550.restore({ irq: rec, sink: rec, rxFifoCapacity: 64 }, state as Serial16550State),
        (err: unknown) => err instanceof DeviceStateError && err.code === 'ERR_DEVICE_STATE',
        JSON.stringify(state),
      );
    }
  });

  it('rejects any field replaced by a value of the wrong kind', () => {
    const fields = Object.keys(good());
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.oneof(fc.string(), fc.constant(null), fc.double({ min: 256, max: 1e9 }), fc.object()),
        (field, junk) => {
          const rec = new Recorder();
          const state = { ...good(), [field]: junk } as unknown as Serial16550State;
          assert.throws(() => Serial16550.restore({ irq: rec, sink: rec }, state), DeviceStateError);
        },
      ),
    );
  });
});

describe('Serial16550 peekLsr (the VMM answers LSR polls from it)', () => {
  it('equals what a read returns whenever it is defined, and is undefined while a read would clear an overrun', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.constant(null)), { maxLength: 20 }), (steps) => {
      const { uart } = make(16);
      for (const s of steps) {
        if (s) uart.enqueueInput(s);
        else rd(uart, 0); // the guest takes a byte
        const peek = uart.peekLsr();
        const read = rd(uart, 5);
        if (peek !== undefined) assert.equal(read, peek);
        else assert.ok(read & 0x02, 'undefined only while the overrun bit is set');
      }
    }), { numRuns: 1000 });
  });
});

describe('Serial16550 pioWriteRun (the console queue)', () => {
  const setup = fc.record({
    lcr: fc.integer({ min: 0, max: 255 }),
    mcr: fc.integer({ min: 0, max: 31 }),
    ier: fc.integer({ min: 0, max: 15 }),
  });

  it('leaves the UART and the sink as the same writes one at a time would, in every mode', () => {
    fc.assert(fc.property(setup, fc.constantFrom(UART_TX, UART_IER, UART_LCR, UART_SCR), fc.uint8Array({ maxLength: 300 }), (s, offset, bytes) => {
      const one = make();
      const run = make();
      for (const { uart } of [one, run]) {
        wr(uart, UART_LCR, s.lcr & 0x7f);
        wr(uart, UART_IER, s.ier);
        wr(uart, UART_MCR, s.mcr);
        wr(uart, UART_LCR, s.lcr);
      }
      for (let i = 0; i < bytes.length; i++) one.uart.pioWrite(offset, bytes.subarray(i, i + 1));
      run.uart.pioWriteRun(offset, bytes);
      assert.deepEqual(run.rec.out, one.rec.out);
      assert.deepEqual(run.uart.saveState(), one.uart.saveState());
      assert.equal(run.uart.metrics.bytesOut, one.uart.metrics.bytesOut);
      // THR-empty: once for the whole run where one-at-a-time pulses per byte, never when it is off.
      if (bytes.length === 0 || one.rec.pulses === 0) assert.equal(run.rec.pulses, one.rec.pulses);
      else assert.ok(run.rec.pulses >= 1 && run.rec.pulses <= one.rec.pulses);
    }));
  });

  it('hands a transmitted run to the sink in one call', () => {
    const { uart } = make();
    const calls: number[] = [];
    const sinkUart = new Serial16550({ irq: new Recorder(), sink: { write: (b) => calls.push(b.length) } });
    sinkUart.pioWriteRun(UART_TX, new TextEncoder().encode('hb 1 2 3\n'));
    assert.deepEqual(calls, [9]);
    uart.pioWriteRun(UART_TX, new Uint8Array(0));
    assert.equal(uart.metrics.bytesOut, 0);
  });
});
