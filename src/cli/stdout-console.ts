// A console sink for foreground VMs: batches guest output and writes it to stdout once per
// event-loop turn (one write per burst of lines instead of one per exit).

import type { ByteSink } from '../devices/device.js';

export class StdoutConsole implements ByteSink {
  private chunks: Buffer[] = [];
  private scheduled = false;

  write(bytes: Uint8Array): void {
    this.chunks.push(Buffer.from(bytes));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0) return;
    process.stdout.write(Buffer.concat(this.chunks));
    this.chunks = [];
  }
}
