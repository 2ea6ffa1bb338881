// The PC legacy devices every swapvisor VM has, placed on the port bus: COM1 (16550A, IRQ 4),
// the i8042 (for reset), the CMOS RTC and the debug-exit port. Also quiet sinks for ports that
// guests probe on every PC (POST code 0x80, PCI config 0xcf8-0xcff), so they don't count as unknown.

import { Bus } from '../devices/bus.js';
import type { ByteSink, IrqLine, PioDevice } from '../devices/device.js';
import { CmosRtc, type CmosRtcState } from '../devices/legacy/cmos-rtc.js';
import { DebugExit, type DebugExitState } from '../devices/legacy/debug-exit.js';
import { I8042, type I8042State } from '../devices/legacy/i8042.js';
import { Serial16550, type Serial16550State } from '../devices/legacy/serial-16550.js';
import { CMOS_PORT, COM1_IRQ, COM1_PORT, DEBUG_EXIT_PORT, I8042_PORT } from '../arch/x86_64/layout.js';
import type { VmFd } from '../sys/kvm.js';

export interface LegacyDeviceEvents {
  console: ByteSink;
  onReset(): void;
  onExit(status: number): void;
}

export interface LegacyDevices {
  bus: Bus<PioDevice>;
  serial: Serial16550;
  i8042: I8042;
  rtc: CmosRtc;
  debugExit: DebugExit;
}

/** An ISA interrupt line into KVM's in-kernel PIC and IOAPIC. */
export function isaIrqLine(vm: VmFd, irq: number): IrqLine {
  return {
    setLevel: (high) => vm.irqLine(irq, high),
    pulse: () => {
      vm.irqLine(irq, true);
      vm.irqLine(irq, false);
    },
  };
}

/** Reads as all ones, ignores writes: what a port with nothing behind it does on a PC. */
const emptyPorts: PioDevice = {
  pioRead: (_offset, data) => data.fill(0xff),
  pioWrite: () => {},
};

/** The saved state of every legacy device, keyed by the ids the state format uses. */
export interface LegacyDeviceStates {
  serial0: Serial16550State;
  i8042: I8042State;
  rtc: CmosRtcState;
  debugExit: DebugExitState;
}

export function createLegacyDevices(vm: VmFd, ev: LegacyDeviceEvents): LegacyDevices {
  const a = deviceArgs(vm, ev);
  return placeOnBus(new Serial16550(a.serial), new I8042(a.i8042), new CmosRtc(a.rtc), new DebugExit(a.debugExit));
}

/** Recreates the devices from saved state, wired to this VM's IRQ lines and this instance's sinks. */
export function restoreLegacyDevices(vm: VmFd, ev: LegacyDeviceEvents, s: LegacyDeviceStates): LegacyDevices {
  const a = deviceArgs(vm, ev);
  return placeOnBus(Serial16550.restore(a.serial, s.serial0), I8042.restore(a.i8042, s.i8042), CmosRtc.restore(a.rtc, s.rtc), DebugExit.restore(a.debugExit, s.debugExit));
}

export function saveLegacyDevices(d: LegacyDevices): LegacyDeviceStates {
  return { serial0: d.serial.saveState(), i8042: d.i8042.saveState(), rtc: d.rtc.saveState(), debugExit: d.debugExit.saveState() };
}

function deviceArgs(vm: VmFd, ev: LegacyDeviceEvents) {
  return {
    serial: { irq: isaIrqLine(vm, COM1_IRQ), sink: ev.console },
    i8042: { onReset: ev.onReset },
    rtc: { clock: { nowMs: () => Date.now() } },
    debugExit: { onExit: ev.onExit },
  };
}

function placeOnBus(serial: Serial16550, i8042: I8042, rtc: CmosRtc, debugExit: DebugExit): LegacyDevices {
  const bus = new Bus<PioDevice>();
  bus.insert('serial0', COM1_PORT, 8, serial);
  bus.insert('i8042', I8042_PORT, 5, i8042);
  bus.insert('rtc', CMOS_PORT, 2, rtc);
  bus.insert('debug-exit', DEBUG_EXIT_PORT, 1, debugExit);
  bus.insert('post-code', 0x80, 1, emptyPorts);
  bus.insert('pci-config', 0xcf8, 8, emptyPorts);
  return { bus, serial, i8042, rtc, debugExit };
}
