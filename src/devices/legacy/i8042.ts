// Just enough of the i8042 PS/2 controller for a guest to reset the machine and for Linux's
// probe to finish quickly: controller commands, the command byte and the status register.
// No keyboard or mouse is attached, so nothing raises IRQ 1 or 12, and keyboard bytes are dropped.
// Spec: IBM PS/2 Hardware Interface Technical Reference (8042 keyboard controller); OSDev "8042 PS/2 Controller".

import type { Persist, PioDevice } from '../device.js';
import { DeviceStateError, readBits, readBool, readByte, readRecord } from './device-state-error.js';

// Ports, by offset from 0x60 (the device covers 0x60..0x64; offsets 1-3 belong to nobody):
//   off  read                    write
//   0    output buffer (data)    input buffer: data, or the parameter of a pending command
//   4    status register         controller command
export const I8042_DATA_OFFSET = 0;
export const I8042_COMMAND_OFFSET = 4;
export const I8042_PORT_COUNT = 5;

// Status register:
//   bit 0  OBF   output buffer full (a byte waits at port 0x60)
//   bit 1  IBF   input buffer full (always 0: input is consumed at once)
//   bit 2  SYS   system flag, copied from command byte bit 2 (POST passed)
//   bit 3  A2    the last write went to the command port
//   bit 4  INH   keyboard not inhibited
export const I8042_STR_OBF = 0x01;
export const I8042_STR_SYSFLAG = 0x04;
export const I8042_STR_CMDDAT = 0x08;
export const I8042_STR_KEYLOCK = 0x10;

// Command byte (CTR): bit 0 keyboard IRQ, bit 1 aux IRQ, bit 2 system flag, bit 4 keyboard
// disabled, bit 5 aux disabled, bit 6 scancode translation. Bits 3 and 7 are reserved, zero.
export const I8042_CTR_SYSFLAG = 0x04;
export const I8042_CTR_KBDDIS = 0x10;
export const I8042_CTR_AUXDIS = 0x20;
const CTR_WRITABLE = 0x77;
const CTR_DEFAULT = 0x45; // keyboard IRQ, POST passed, translation: what PC firmware leaves behind

// Controller commands (written to port 0x64).
export const I8042_CMD_CTL_RCTR = 0x20;
export const I8042_CMD_CTL_WCTR = 0x60;
export const I8042_CMD_AUX_DISABLE = 0xa7;
export const I8042_CMD_AUX_ENABLE = 0xa8;
export const I8042_CMD_AUX_TEST = 0xa9;
export const I8042_CMD_CTL_TEST = 0xaa;
export const I8042_CMD_KBD_TEST = 0xab;
export const I8042_CMD_KBD_DISABLE = 0xad;
export const I8042_CMD_KBD_ENABLE = 0xae;
export const I8042_CMD_READ_OUTPUT_PORT = 0xd0;
export const I8042_CMD_WRITE_OUTPUT_PORT = 0xd1;
/** 0xf0-0xff pulse output-port lines low for each clear bit in 0-3; bit 0 is the CPU reset line. */
export const I8042_CMD_PULSE_BASE = 0xf0;
export const I8042_CMD_RESET = 0xfe;

export const I8042_RET_CTL_TEST = 0x55;
export const I8042_RET_KBD_TEST = 0x00;
/** Aux interface test answer "clock line stuck low": tells Linux there is no aux port. */
export const I8042_RET_AUX_ABSENT = 0x01;

// Output port: bit 0 is the CPU reset line (active low), bit 1 the A20 gate.
const OUTPUT_PORT_RESET_N = 0x01;
const OUTPUT_PORT_DEFAULT = 0x03;

/** Commands that wait for a parameter byte at port 0x60; 0 means none is pending. */
const PENDING_COMMANDS: readonly number[] = [0, I8042_CMD_CTL_WCTR, I8042_CMD_WRITE_OUTPUT_PORT];

const DEVICE = 'i8042';

export interface I8042Args {
  /** Called when the guest pulses the CPU reset line (command 0xfe, or output port bit 0 cleared). */
  readonly onReset: () => void;
}

export type I8042RestoreArgs = I8042Args;

export interface I8042State {
  /** The controller command byte (CTR). */
  commandByte: number;
  /** The byte at port 0x60, meaningful while `outputFull`. */
  outputByte: number;
  outputFull: boolean;
  /** A command waiting for its parameter byte (0x60 or 0xd1), or 0. */
  pendingCommand: number;
  /** Status bit 3: the last write went to the command port. */
  lastWriteWasCommand: boolean;
  outputPort: number;
}

/** Counters since construction or restore (not saved). */
export interface I8042Metrics {
  resetRequests: number;
  /** Unknown commands and bytes for the absent keyboard, both ignored. */
  ignoredWrites: number;
}

export class I8042 implements PioDevice, Persist<I8042State> {
  readonly metrics: I8042Metrics = { resetRequests: 0, ignoredWrites: 0 };

  private readonly onReset: () => void;
  private commandByte = CTR_DEFAULT;
  private outputByte = 0;
  private outputFull = false;
  private pendingCommand = 0;
  private lastWriteWasCommand = false;
  private outputPort = OUTPUT_PORT_DEFAULT;

  constructor(args: I8042Args) {
    this.onReset = args.onReset;
  }

  pioRead(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    data.fill(0);
    switch (offset) {
      case I8042_DATA_OFFSET:
        // Reading empties the buffer; an empty buffer reads back its last byte, as hardware does.
        data[0] = this.outputByte;
        this.outputFull = false;
        return;
      case I8042_COMMAND_OFFSET:
        data[0] = this.status();
        return;
      default:
        data.fill(0xff);
    }
  }

  // A multi-byte access is one access of that width: only its first byte counts.
  pioWrite(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const value = data[0]!;
    if (offset === I8042_DATA_OFFSET) {
      this.lastWriteWasCommand = false;
      this.writeData(value);
    } else if (offset === I8042_COMMAND_OFFSET) {
      this.lastWriteWasCommand = true;
      this.writeCommand(value);
    } else {
      this.metrics.ignoredWrites++;
    }
  }

  saveState(): I8042State {
    return {
      commandByte: this.commandByte,
      outputByte: this.outputByte,
      outputFull: this.outputFull,
      pendingCommand: this.pendingCommand,
      lastWriteWasCommand: this.lastWriteWasCommand,
      outputPort: this.outputPort,
    };
  }

  static restore(args: I8042RestoreArgs, state: I8042State): I8042 {
    const s = readRecord(DEVICE, state);
    const ctl = new I8042(args);
    ctl.commandByte = readBits(DEVICE, s, 'commandByte', CTR_WRITABLE);
    ctl.outputByte = readByte(DEVICE, s, 'outputByte');
    ctl.outputFull = readBool(DEVICE, s, 'outputFull');
    const pending = readByte(DEVICE, s, 'pendingCommand');
    if (!PENDING_COMMANDS.includes(pending)) {
      const got = `0x${pending.toString(16)}`;
      throw new DeviceStateError(DEVICE, 'pendingCommand', `must be one of 0, 0x60, 0xd1, got ${got}`);
    }
    ctl.pendingCommand = pending;
    ctl.lastWriteWasCommand = readBool(DEVICE, s, 'lastWriteWasCommand');
    ctl.outputPort = readByte(DEVICE, s, 'outputPort');
    return ctl;
  }

  private status(): number {
    return (
      (this.outputFull ? I8042_STR_OBF : 0) |
      (this.commandByte & I8042_CTR_SYSFLAG ? I8042_STR_SYSFLAG : 0) |
      (this.lastWriteWasCommand ? I8042_STR_CMDDAT : 0) |
      I8042_STR_KEYLOCK
    );
  }

  private writeData(value: number): void {
    const command = this.pendingCommand;
    this.pendingCommand = 0;
    switch (command) {
      case I8042_CMD_CTL_WCTR:
        this.commandByte = value & CTR_WRITABLE;
        return;
      case I8042_CMD_WRITE_OUTPUT_PORT:
        this.outputPort = value;
        if (!(value & OUTPUT_PORT_RESET_N)) this.requestReset();
        return;
      default:
        this.metrics.ignoredWrites++; // a byte for the keyboard, which is not there
    }
  }

  private writeCommand(command: number): void {
    this.pendingCommand = 0;
    switch (command) {
      case I8042_CMD_CTL_RCTR:
        return this.output(this.commandByte);
      case I8042_CMD_CTL_WCTR:
      case I8042_CMD_WRITE_OUTPUT_PORT:
        this.pendingCommand = command;
        return;
      case I8042_CMD_AUX_DISABLE:
        this.commandByte |= I8042_CTR_AUXDIS;
        return;
      case I8042_CMD_AUX_ENABLE:
        this.commandByte &= ~I8042_CTR_AUXDIS;
        return;
      case I8042_CMD_AUX_TEST:
        return this.output(I8042_RET_AUX_ABSENT);
      case I8042_CMD_CTL_TEST:
        this.commandByte |= I8042_CTR_SYSFLAG;
        return this.output(I8042_RET_CTL_TEST);
      case I8042_CMD_KBD_TEST:
        return this.output(I8042_RET_KBD_TEST);
      case I8042_CMD_KBD_DISABLE:
        this.commandByte |= I8042_CTR_KBDDIS;
        return;
      case I8042_CMD_KBD_ENABLE:
        this.commandByte &= ~I8042_CTR_KBDDIS;
        return;
      case I8042_CMD_READ_OUTPUT_PORT:
        return this.output(this.outputPort);
      default:
        if (command >= I8042_CMD_PULSE_BASE) {
          if (!(command & OUTPUT_PORT_RESET_N)) this.requestReset();
          return;
        }
        this.metrics.ignoredWrites++;
    }
  }

  // A one-byte output buffer: a new byte replaces one the guest has not read yet.
  private output(value: number): void {
    this.outputByte = value;
    this.outputFull = true;
  }

  private requestReset(): void {
    this.metrics.resetRequests++;
    this.onReset();
  }
}
