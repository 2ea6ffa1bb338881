// A 16550A UART on 8 I/O ports (COM1 is 0x3f8, IRQ 4): the guest's console. It transmits
// instantly (THR is always empty) and receives from a bounded FIFO the host console fills; it
// does not model baud timing, line errors other than overrun, or modem-status interrupts.
// Spec: TI PC16550D datasheet (SLLS057); behaviour matches what Linux's 8250 driver expects.

import type { ByteSink, IrqLine, Persist, PioDevice } from '../device.js';
import { readBits, readBool, readByte, readBytes, readRecord } from './device-state-error.js';

// Register map, by offset from the base port (DLAB is LCR bit 7):
//   off  read                    write                   DLAB=1
//   0    RBR receive buffer      THR transmit holding    DLL divisor latch, low byte
//   1    IER interrupt enable    IER                     DLM divisor latch, high byte
//   2    IIR interrupt ident     FCR FIFO control
//   3    LCR line control        LCR
//   4    MCR modem control       MCR
//   5    LSR line status         (ignored)
//   6    MSR modem status        (ignored)
//   7    SCR scratch             SCR
export const UART_RX = 0;
export const UART_TX = 0;
export const UART_DLL = 0;
export const UART_IER = 1;
export const UART_DLM = 1;
export const UART_IIR = 2;
export const UART_FCR = 2;
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;
export const SERIAL_16550_PORT_COUNT = 8;

// IER: which conditions may interrupt. Bits 4-7 read as zero (Linux's XScale probe relies on it).
export const UART_IER_RDI = 0x01; // received data available
export const UART_IER_THRI = 0x02; // transmit holding register empty
export const UART_IER_RLSI = 0x04; // receiver line status
export const UART_IER_MSI = 0x08; // modem status (accepted, never raised)
const IER_WRITABLE = 0x0f;

// IIR: bit 0 clear means an interrupt is pending; bits 1-3 say which; bits 6-7 set when FIFOs are on.
export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_IIR_FIFO_ENABLED = 0xc0;

// FCR: bit 0 enables the FIFOs, bits 1-2 clear them (self-clearing), bits 6-7 the receive trigger level.
export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
const FCR_KEPT = 0xc9; // enable, DMA mode select, trigger level

// LCR bit 7 switches offsets 0 and 1 to the divisor latch.
export const UART_LCR_DLAB = 0x80;

// MCR: bits 0-3 drive DTR, RTS, OUT1, OUT2; bit 4 loops the transmitter back to the receiver.
export const UART_MCR_LOOP = 0x10;
const MCR_WRITABLE = 0x1f;

// LSR: data ready, overrun, and the transmitter bits, always set because THR drains instantly.
export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;

// MSR: outside loopback, carrier, data-set-ready and clear-to-send are asserted. In loopback the
// upper nibble mirrors MCR: DTR→DSR (bit 5), RTS→CTS (bit 4), OUT1→RI (bit 6), OUT2→DCD (bit 7).
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_RI = 0x40;
export const UART_MSR_DCD = 0x80;

/** The default receive FIFO bound: host input beyond this is dropped and counted. */
export const SERIAL_RX_FIFO_DEFAULT_BYTES = 64 * 1024;
/** No configuration may ask for more than this (it also bounds a restored FIFO). */
export const SERIAL_RX_FIFO_MAX_BYTES = 16 * 1024 * 1024;

const DEVICE = 'serial-16550';

export interface Serial16550Args {
  /** The UART's interrupt line (edge: pulsed when an enabled condition becomes pending). */
  readonly irq: IrqLine;
  /** Receives every transmitted byte. The view is only valid during the call: copy to keep. */
  readonly sink: ByteSink;
  /** Receive FIFO bound in bytes; defaults to SERIAL_RX_FIFO_DEFAULT_BYTES. */
  readonly rxFifoCapacity?: number;
}

/** Restore needs the same host-side wiring as construction. */
export type Serial16550RestoreArgs = Serial16550Args;

/** Saved state. Derived bits (LSR DR/THRE/TEMT, MSR, IIR) are recomputed, not saved. */
export interface Serial16550State {
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  /** FCR bits that persist (enable, DMA mode, trigger level); clear bits are not kept. */
  fcr: number;
  /** Divisor latch, low and high bytes. */
  dll: number;
  dlm: number;
  /** LSR overrun error, set when input was dropped and cleared by reading LSR. */
  overrun: boolean;
  /** A THR-empty interrupt waits to be reported by IIR. */
  thrEmptyPending: boolean;
  /** Received bytes not yet read by the guest, oldest first. */
  rxFifo: number[];
}

/** Counters since construction or restore (not saved). */
export interface Serial16550Metrics {
  /** Bytes written to the sink. */
  bytesOut: number;
  /** Bytes of host input accepted into the receive FIFO. */
  bytesIn: number;
  /** Bytes of host input (or loopback) dropped because the receive FIFO was full. */
  overflowDrops: number;
}

export class Serial16550 implements PioDevice, Persist<Serial16550State> {
  readonly metrics: Serial16550Metrics = { bytesOut: 0, bytesIn: 0, overflowDrops: 0 };

  private readonly irq: IrqLine;
  private readonly sink: ByteSink;
  // The receive FIFO is a ring: `rxCount` bytes starting at `rxHead`.
  private readonly rx: Uint8Array;
  private rxHead = 0;
  private rxCount = 0;

  private ier = 0;
  private lcr = 0;
  private mcr = 0x08; // OUT2, as firmware leaves it: on PCs it gates the UART's IRQ onto the bus
  private scr = 0;
  private fcr = 0;
  private dll = 0x0c; // 9600 baud
  private dlm = 0;
  private overrun = false;
  private thrEmptyPending = false;

  constructor(args: Serial16550Args) {
    const capacity = args.rxFifoCapacity ?? SERIAL_RX_FIFO_DEFAULT_BYTES;
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > SERIAL_RX_FIFO_MAX_BYTES) {
      throw new RangeError(`rxFifoCapacity must be an integer in [1, ${SERIAL_RX_FIFO_MAX_BYTES}], got ${capacity}`);
    }
    this.irq = args.irq;
    this.sink = args.sink;
    this.rx = new Uint8Array(capacity);
  }

  /** Host console input. Bytes that do not fit are dropped, counted, and flagged as an overrun. */
  enqueueInput(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const accepted = this.pushRx(bytes);
    this.metrics.bytesIn += accepted;
    this.notify(UART_IER_RDI | UART_IER_RLSI);
  }

  /** Bytes waiting in the receive FIFO. */
  get rxPending(): number {
    return this.rxCount;
  }

  pioRead(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    data.fill(0);
    data[0] = this.readRegister(offset);
  }

  // A multi-byte access is one access of that width: only its first byte reaches the register.
  pioWrite(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const value = data[0]!;
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case UART_TX:
        if (dlab) this.dll = value;
        else this.transmit(data);
        return;
      case UART_IER:
        if (dlab) this.dlm = value;
        else this.writeIer(value);
        return;
      case UART_FCR:
        this.writeFcr(value);
        return;
      case UART_LCR:
        this.lcr = value;
        return;
      case UART_MCR:
        this.mcr = value & MCR_WRITABLE;
        return;
      case UART_SCR:
        this.scr = value;
        return;
      default:
        return; // LSR, MSR and anything out of range: writes are ignored
    }
  }

  /**
   * A run of 1-byte writes to one register, in order (the console queue's bytes): the same as writing
   * them one at a time, except that transmitted bytes reach the sink in one call and THR-empty is
   * signalled once, after the last, as a 16550 with its FIFO does.
   */
  pioWriteRun(offset: number, bytes: Uint8Array): void {
    if (offset !== UART_TX || (this.lcr & UART_LCR_DLAB) !== 0 || (this.mcr & UART_MCR_LOOP) !== 0) {
      for (let i = 0; i < bytes.length; i++) this.pioWrite(offset, bytes.subarray(i, i + 1));
      return;
    }
    if (bytes.length === 0) return;
    this.sink.write(bytes);
    this.metrics.bytesOut += bytes.length;
    this.thrEmptyPending = true;
    this.notify(UART_IER_THRI);
  }

  saveState(): Serial16550State {
    const rxFifo = new Array<number>(this.rxCount);
    for (let i = 0; i < this.rxCount; i++) rxFifo[i] = this.rx[(this.rxHead + i) % this.rx.length]!;
    return {
      ier: this.ier,
      lcr: this.lcr,
      mcr: this.mcr,
      scr: this.scr,
      fcr: this.fcr,
      dll: this.dll,
      dlm: this.dlm,
      overrun: this.overrun,
      thrEmptyPending: this.thrEmptyPending,
      rxFifo,
    };
  }

  /** Rebuilds a UART from saved state. Raises no interrupt: pending ones live in the irqchip's state. */
  static restore(args: Serial16550RestoreArgs, state: Serial16550State): Serial16550 {
    const s = readRecord(DEVICE, state);
    const uart = new Serial16550(args);
    uart.ier = readBits(DEVICE, s, 'ier', IER_WRITABLE);
    uart.lcr = readByte(DEVICE, s, 'lcr');
    uart.mcr = readBits(DEVICE, s, 'mcr', MCR_WRITABLE);
    uart.scr = readByte(DEVICE, s, 'scr');
    uart.fcr = readBits(DEVICE, s, 'fcr', FCR_KEPT);
    uart.dll = readByte(DEVICE, s, 'dll');
    uart.dlm = readByte(DEVICE, s, 'dlm');
    uart.overrun = readBool(DEVICE, s, 'overrun');
    uart.thrEmptyPending = readBool(DEVICE, s, 'thrEmptyPending');
    const rxFifo = readBytes(DEVICE, s, 'rxFifo', 0, uart.rx.length);
    uart.rx.set(rxFifo);
    uart.rxCount = rxFifo.length;
    return uart;
  }

  private readRegister(offset: number): number {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case UART_RX:
        return dlab ? this.dll : this.popRx();
      case UART_IER:
        return dlab ? this.dlm : this.ier;
      case UART_IIR:
        return this.readIir();
      case UART_LCR:
        return this.lcr;
      case UART_MCR:
        return this.mcr;
      case UART_LSR: {
        const lsr = this.lsr();
        this.overrun = false;
        return lsr;
      }
      case UART_MSR:
        return this.msr();
      case UART_SCR:
        return this.scr;
      default:
        return 0xff;
    }
  }

  private transmit(data: Uint8Array): void {
    let causes = UART_IER_THRI;
    if (this.mcr & UART_MCR_LOOP) {
      this.pushRx(data.subarray(0, 1));
      causes |= UART_IER_RDI | UART_IER_RLSI;
    } else {
      this.sink.write(data.length === 1 ? data : data.subarray(0, 1));
      this.metrics.bytesOut++;
    }
    // THR drained at once, so "THR empty" becomes pending again after every write.
    this.thrEmptyPending = true;
    this.notify(causes);
  }

  private writeIer(value: number): void {
    const enabled = value & IER_WRITABLE & ~this.ier;
    this.ier = value & IER_WRITABLE;
    // Enabling the THR-empty interrupt while THR is empty raises it at once (Linux's start_tx relies on it).
    if (enabled & UART_IER_THRI) this.thrEmptyPending = true;
    this.notify(enabled);
  }

  private writeFcr(value: number): void {
    // Toggling FIFO enable, or the clear bit, empties the receive FIFO. With FIFOs off the
    // receiver still buffers (a 16450 would hold one byte): guests poll LSR DR either way.
    if ((value ^ this.fcr) & UART_FCR_ENABLE_FIFO || value & UART_FCR_CLEAR_RCVR) {
      this.rxHead = 0;
      this.rxCount = 0;
    }
    this.fcr = value & FCR_KEPT;
  }

  /** Conditions that are both pending and enabled, as IER bits. */
  private pendingMask(): number {
    const pending =
      (this.overrun ? UART_IER_RLSI : 0) |
      (this.rxCount > 0 ? UART_IER_RDI : 0) |
      (this.thrEmptyPending ? UART_IER_THRI : 0);
    return pending & this.ier;
  }

  // IIR reports the highest-priority enabled condition: line status, then data, then THR empty.
  private readIir(): number {
    const pending = this.pendingMask();
    const id =
      pending & UART_IER_RLSI ? UART_IIR_RLSI
      : pending & UART_IER_RDI ? UART_IIR_RDI
      : pending & UART_IER_THRI ? UART_IIR_THRI
      : UART_IIR_NO_INT;
    // Reading IIR acknowledges a THR-empty interrupt, but only when IIR is the one reporting it.
    if (id === UART_IIR_THRI) this.thrEmptyPending = false;
    return id | (this.fcr & UART_FCR_ENABLE_FIFO ? UART_IIR_FIFO_ENABLED : 0);
  }

  /**
   * LSR as a read would return it, when that read would change nothing (no overrun to clear);
   * undefined otherwise. Lets a VMM answer LSR polls without running the model.
   */
  peekLsr(): number | undefined {
    return this.overrun ? undefined : this.lsr();
  }

  private lsr(): number {
    return (
      UART_LSR_THRE | UART_LSR_TEMT | (this.rxCount > 0 ? UART_LSR_DR : 0) | (this.overrun ? UART_LSR_OE : 0)
    );
  }

  private msr(): number {
    if (!(this.mcr & UART_MCR_LOOP)) return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    const m = this.mcr;
    return (
      (m & 0x01 ? UART_MSR_DSR : 0) |
      (m & 0x02 ? UART_MSR_CTS : 0) |
      (m & 0x04 ? UART_MSR_RI : 0) |
      (m & 0x08 ? UART_MSR_DCD : 0)
    );
  }

  // Edge line: an event that makes one of `causes` (IER bits) pending and enabled pulses once.
  // Linux's handler loops on IIR until it reads NO_INT, so one pulse per event never strands data.
  private notify(causes: number): void {
    if (this.pendingMask() & causes) this.irq.pulse();
  }

  /** Appends what fits; returns how many bytes were accepted. */
  private pushRx(bytes: Uint8Array): number {
    const cap = this.rx.length;
    const accepted = Math.min(bytes.length, cap - this.rxCount);
    let tail = (this.rxHead + this.rxCount) % cap;
    for (let i = 0; i < accepted; i++) {
      this.rx[tail] = bytes[i]!;
      tail = tail + 1 === cap ? 0 : tail + 1;
    }
    this.rxCount += accepted;
    const dropped = bytes.length - accepted;
    if (dropped > 0) {
      this.metrics.overflowDrops += dropped;
      this.overrun = true;
    }
    return accepted;
  }

  private popRx(): number {
    if (this.rxCount === 0) return 0;
    const b = this.rx[this.rxHead]!;
    this.rxHead = this.rxHead + 1 === this.rx.length ? 0 : this.rxHead + 1;
    this.rxCount--;
    return b;
  }
}
