// Keeps this process's event loop spinning (setImmediate after setImmediate) for the short windows
// where latency matters more than CPU: a VM paused for its move. An idle CPU here is a halted vCPU
// of the machine underneath, and waking it costs milliseconds; a spinning loop sees the other
// instance's message, and the moved VMs' exits, as soon as they arrive.

import { yieldCpu } from '../sys/affinity.js';

export class HotLoop {
  private users = 0;
  private spinning = false;

  /** Holds the loop hot for at most `maxMs`, or until the returned release is called. */
  holdFor(maxMs: number): () => void {
    const release = this.hold();
    const timer = setTimeout(release, maxMs);
    return () => {
      clearTimeout(timer);
      release();
    };
  }

  hold(): () => void {
    this.users++;
    if (!this.spinning) {
      this.spinning = true;
      const spin = (): void => {
        if (this.users > 0) {
          // The CPU is shared with guests: a vCPU woken meanwhile runs now, not at the next tick
          // (a trace showed a woken vCPU waiting 3.5 ms behind this loop).
          yieldCpu();
          setImmediate(spin);
        } else this.spinning = false;
      };
      setImmediate(spin);
    }
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.users--;
      }
    };
  }
}
