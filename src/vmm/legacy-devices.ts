// The PC legacy devices every swapvisor VM has, placed on the port bus: COM1 (16550A, IRQ 4),
// the i8042 (for reset), the CMOS RTC and the debug-exit port. Also quiet sinks for ports that
// guests probe on every PC (POST code 0x80, PCI config 0xcf8-0xcff), so they don't count as unknown.

import { Bus } from '../devices/bus.js';
import type { ByteSink, IrqLine, PioDevice } from '../devices/device.js';
import { CmosRtc } from '../devices/legacy/cmos-rtc.js';
import { DebugExit } from '../devices/legacy/debug-exit.js';
import { I8042 } from '../devices/legacy/i8042.js';
import { Serial16550 } from '../devices/legacy/serial-16550.js';
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

export function createLegacyDevices(vm: VmFd, ev: LegacyDeviceEvents): LegacyDevices {
  const serial = new Serial16550({ irq: isaIrqLine(vm, COM1_IRQ), sink: ev.console });
  const i8042 = new I8042({ onReset: ev.onReset });
  const rtc = new CmosRtc({ clock: { nowMs: () => Date.now() } });
  const debugExit = new DebugExit({ onExit: ev.onExit });
  const bus = new Bus<PioDevice>();
  bus.insert('serial0', COM1_PORT, 8, serial);
  bus.insert('i8042', I8042_PORT, 5, i8042);
  bus.insert('rtc', CMOS_PORT, 2, rtc);
  bus.insert('debug-exit', DEBUG_EXIT_PORT, 1, debugExit);
  bus.insert('post-code', 0x80, 1, emptyPorts);
  bus.insert('pci-config', 0xcf8, 8, emptyPorts);
  return { bus, serial, i8042, rtc, debugExit };
}
