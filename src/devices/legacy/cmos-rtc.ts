// The MC146818-style CMOS real-time clock on ports 0x70/0x71: time and date come from an
// injected wall clock on every read, and the rest of the 128 bytes is plain guest storage.
// It raises no interrupts (no periodic, alarm or update IRQ 8) and ignores guest writes to the time.
// Spec: Motorola MC146818A datasheet; OSDev "CMOS" and "RTC".

import type { Persist, PioDevice, WallClock } from '../device.js';
import { readBool, readBytes, readInt, readRecord } from './device-state-error.js';

// Ports, by offset from 0x70:
//   off  read                          write
//   0    0xff                          bits 0-6: CMOS index; bit 7: 1 = NMI disabled
//   1    the CMOS byte at the index    the CMOS byte at the index
export const CMOS_INDEX_OFFSET = 0;
export const CMOS_DATA_OFFSET = 1;
export const CMOS_PORT_COUNT = 2;
export const CMOS_SIZE = 128;
const CMOS_INDEX_MASK = 0x7f;
const CMOS_NMI_DISABLE = 0x80;

// CMOS map (clock registers are computed from the wall clock; alarms are storage):
//   0x00 seconds    0x01 seconds alarm   0x02 minutes   0x03 minutes alarm
//   0x04 hours      0x05 hours alarm     0x06 day of week (1 = Sunday)
//   0x07 day of month                    0x08 month (1-12)                  0x09 year (00-99)
//   0x0a register A  0x0b register B  0x0c register C  0x0d register D
//   0x0e-0x7f battery-backed storage, except 0x32: century (computed)
export const RTC_SECONDS = 0x00;
export const RTC_MINUTES = 0x02;
export const RTC_HOURS = 0x04;
export const RTC_DAY_OF_WEEK = 0x06;
export const RTC_DAY_OF_MONTH = 0x07;
export const RTC_MONTH = 0x08;
export const RTC_YEAR = 0x09;
export const RTC_REG_A = 0x0a;
export const RTC_REG_B = 0x0b;
export const RTC_REG_C = 0x0c;
export const RTC_REG_D = 0x0d;
export const RTC_CENTURY = 0x32;

// Register A: bit 7 UIP (update in progress, read-only, always 0 here), bits 4-6 divider,
// bits 0-3 periodic rate. 0x26 is the 32.768 kHz time base with a 1024 Hz rate.
export const RTC_UIP = 0x80;
const RTC_REG_A_DEFAULT = 0x26;

// Register B: bit 7 SET, bit 6 PIE, bit 5 AIE, bit 4 UIE, bit 3 SQWE, bit 2 DM (1 = binary,
// 0 = BCD), bit 1 24/12 (1 = 24-hour), bit 0 DSE. Default: BCD, 24-hour.
export const RTC_DM_BINARY = 0x04;
export const RTC_24H = 0x02;
const RTC_REG_B_DEFAULT = RTC_24H;

// Register D: bit 7 VRT, the battery is good.
export const RTC_VRT = 0x80;

/** In 12-hour mode, bit 7 of the hours register marks PM. */
const RTC_HOURS_PM = 0x80;

/** Indexes the guest cannot write: the clock itself, register C/D, and the century. */
const READ_ONLY: ReadonlySet<number> = new Set([
  RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR,
  RTC_REG_C, RTC_REG_D, RTC_CENTURY,
]);

const DEVICE = 'cmos-rtc';

export interface CmosRtcArgs {
  readonly clock: WallClock;
}

export type CmosRtcRestoreArgs = CmosRtcArgs;

/** Saved state. The time is not saved: after a restore it comes from the wall clock again. */
export interface CmosRtcState {
  /** All 128 CMOS bytes; the clock registers' slots are kept but never read back. */
  cmos: number[];
  /** The selected index (0-127). */
  index: number;
  /** Port 0x70 bit 7 as last written. */
  nmiDisabled: boolean;
}

/** Counters since construction or restore (not saved). */
export interface CmosRtcMetrics {
  /** Writes to the clock, to read-only registers, or to the read side of port 0x70. */
  ignoredWrites: number;
}

export class CmosRtc implements PioDevice, Persist<CmosRtcState> {
  readonly metrics: CmosRtcMetrics = { ignoredWrites: 0 };

  private readonly clock: WallClock;
  private readonly cmos = new Uint8Array(CMOS_SIZE);
  private index = 0;
  private nmiMask = false;

  constructor(args: CmosRtcArgs) {
    this.clock = args.clock;
    this.cmos[RTC_REG_A] = RTC_REG_A_DEFAULT;
    this.cmos[RTC_REG_B] = RTC_REG_B_DEFAULT;
  }

  /** Whether the guest has masked NMIs through port 0x70 bit 7. */
  get nmiDisabled(): boolean {
    return this.nmiMask;
  }

  pioRead(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    data.fill(0);
    data[0] = offset === CMOS_DATA_OFFSET ? this.readCmos(this.index) : 0xff;
  }

  // A multi-byte access is one access of that width: only its first byte counts.
  pioWrite(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const value = data[0]!;
    if (offset === CMOS_INDEX_OFFSET) {
      this.index = value & CMOS_INDEX_MASK;
      this.nmiMask = (value & CMOS_NMI_DISABLE) !== 0;
    } else if (offset === CMOS_DATA_OFFSET && !READ_ONLY.has(this.index)) {
      this.cmos[this.index] = this.index === RTC_REG_A ? value & ~RTC_UIP : value;
    } else {
      this.metrics.ignoredWrites++;
    }
  }

  saveState(): CmosRtcState {
    return { cmos: Array.from(this.cmos), index: this.index, nmiDisabled: this.nmiMask };
  }

  static restore(args: CmosRtcRestoreArgs, state: CmosRtcState): CmosRtc {
    const s = readRecord(DEVICE, state);
    const rtc = new CmosRtc(args);
    rtc.cmos.set(readBytes(DEVICE, s, 'cmos', CMOS_SIZE, CMOS_SIZE));
    rtc.cmos[RTC_REG_A] &= ~RTC_UIP;
    rtc.index = readInt(DEVICE, s, 'index', 0, CMOS_SIZE - 1);
    rtc.nmiMask = readBool(DEVICE, s, 'nmiDisabled');
    return rtc;
  }

  private readCmos(index: number): number {
    switch (index) {
      case RTC_SECONDS:
      case RTC_MINUTES:
      case RTC_HOURS:
      case RTC_DAY_OF_WEEK:
      case RTC_DAY_OF_MONTH:
      case RTC_MONTH:
      case RTC_YEAR:
      case RTC_CENTURY:
        return this.readClock(index);
      case RTC_REG_C:
        return 0; // no interrupt flags: this RTC raises none
      case RTC_REG_D:
        return RTC_VRT;
      default:
        return this.cmos[index]!;
    }
  }

  /** One clock register, in the format register B selects (UTC, as PC guests expect by default). */
  private readClock(index: number): number {
    const now = new Date(this.clock.nowMs());
    const regB = this.cmos[RTC_REG_B]!;
    const encode = (v: number): number => (regB & RTC_DM_BINARY ? toBinary(v) : toBcd(v));
    switch (index) {
      case RTC_SECONDS:
        return encode(now.getUTCSeconds());
      case RTC_MINUTES:
        return encode(now.getUTCMinutes());
      case RTC_HOURS: {
        const hours = now.getUTCHours();
        if (regB & RTC_24H) return encode(hours);
        return encode(hours % 12 === 0 ? 12 : hours % 12) | (hours >= 12 ? RTC_HOURS_PM : 0);
      }
      case RTC_DAY_OF_WEEK:
        return encode(now.getUTCDay() + 1);
      case RTC_DAY_OF_MONTH:
        return encode(now.getUTCDate());
      case RTC_MONTH:
        return encode(now.getUTCMonth() + 1);
      case RTC_YEAR:
        return encode(now.getUTCFullYear() % 100);
      default:
        return encode(Math.floor(now.getUTCFullYear() / 100) % 100);
    }
  }
}

/** A register value in binary mode. Non-finite input (a broken clock) reads 0. */
function toBinary(value: number): number {
  return Number.isInteger(value) ? value & 0xff : 0;
}

/** Two decimal digits as packed BCD. Out-of-range or non-finite input (a broken clock) reads 0. */
function toBcd(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 99) return 0;
  return ((Math.floor(value / 10) << 4) | value % 10) & 0xff;
}
