// A closed-loop UDP echo load for the io benchmark, meant to run inside its network namespace (`ip netns exec`):
// it keeps `window` datagrams in flight to an echo server, sends one more for each echo, and prints ONE JSON line
// with the echoed packets per second. Unlike test/udp-peer.js it does not pace at a fixed rate; it saturates.
//
// With --bucket-ms N it also prints, every N ms while it runs, one JSON line {"bucket":i,"echoes":n,"maxGapUs":g}:
// g is the longest time without any echo within that bucket (for measuring pauses such as a hot swap).
//
//   node dist/bench/udp-flood.js --to 10.77.0.2:7 [--secs 3] [--window 32] [--size 64] [--bucket-ms 0]

import dgram from 'node:dgram';
import { parseArgs } from 'node:util';

/** Layout of a datagram (little-endian): 0 u32 magic "SVFL", 4 u32 sequence number, then zero padding. */
const MAGIC = 0x4c465653;
const HEADER_BYTES = 8;
/** How long the window may go without any echo before the datagrams in flight count as lost and are replaced. */
const STALL_MS = 20;
/** The first echo (ARP resolved, guest up) must come within this long. */
const FIRST_ECHO_TIMEOUT_MS = 10_000;

export interface UdpFloodReport {
  sent: number;
  received: number;
  /** Datagrams given up on after a stall of STALL_MS without echoes. */
  lostEstimate: number;
  stalls: number;
  elapsedMs: number;
  pps: number;
}

/** Longest echo-free interval per bucket, printed as each bucket closes. */
class GapBuckets {
  private index = 0;
  private echoes = 0;
  private maxGapNs = 0n;
  private lastNs: bigint;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(bucketMs: number) {
    this.lastNs = process.hrtime.bigint();
    this.timer = bucketMs > 0 ? setInterval(() => this.close(), bucketMs) : undefined;
  }

  echo(): void {
    const now = process.hrtime.bigint();
    if (now - this.lastNs > this.maxGapNs) this.maxGapNs = now - this.lastNs;
    this.lastNs = now;
    this.echoes++;
  }

  close(): void {
    if (this.timer === undefined) return;
    const now = process.hrtime.bigint();
    // A bucket with no echo at all has a gap at least as long as the time since the last one.
    const gapNs = now - this.lastNs > this.maxGapNs ? now - this.lastNs : this.maxGapNs;
    process.stdout.write(`${JSON.stringify({ bucket: this.index++, echoes: this.echoes, maxGapUs: Math.round(Number(gapNs) / 1000) })}\n`);
    this.echoes = 0;
    this.maxGapNs = 0n;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}

function flood(host: string, port: number, secs: number, window: number, size: number, bucketMs: number): Promise<UdpFloodReport> {
  const socket = dgram.createSocket('udp4');
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(MAGIC, 0);
  let seq = 0;
  let sent = 0;
  let received = 0;
  let inflight = 0;
  let lostEstimate = 0;
  let stalls = 0;
  let started = false;
  let stopping = false;
  let startNs = 0n;
  let lastSeen = 0;
  let buckets: GapBuckets | undefined;
  const send = (): void => {
    buf.writeUInt32LE(seq++ >>> 0, 4);
    sent++;
    inflight++;
    socket.send(buf, port, host);
  };
  return new Promise((resolve, reject) => {
    const probe = setInterval(send, 100);
    const firstTimeout = setTimeout(() => { clearInterval(probe); socket.close(); reject(new Error(`no echo from ${host}:${port} within ${FIRST_ECHO_TIMEOUT_MS} ms`)); }, FIRST_ECHO_TIMEOUT_MS);
    let stallTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      const elapsedMs = Number(process.hrtime.bigint() - startNs) / 1e6;
      clearInterval(stallTimer);
      buckets?.stop();
      socket.close();
      resolve({ sent, received, lostEstimate, stalls, elapsedMs: Math.round(elapsedMs), pps: Math.round(received / (elapsedMs / 1000)) });
    };
    socket.on('error', (e) => { if (!started) reject(e); });
    socket.on('message', (msg) => {
      if (msg.byteLength < HEADER_BYTES || msg.readUInt32LE(0) !== MAGIC) return;
      if (!started) {
        // Guest reachable: start the measured window from here, with nothing counted before it.
        started = true;
        clearInterval(probe);
        clearTimeout(firstTimeout);
        sent = 0;
        inflight = 0;
        startNs = process.hrtime.bigint();
        buckets = new GapBuckets(bucketMs);
        setTimeout(() => { stopping = true; finish(); }, secs * 1000);
        stallTimer = setInterval(() => {
          if (stopping) return;
          if (received === lastSeen) {
            stalls++;
            lostEstimate += inflight;
            inflight = 0;
            for (let i = 0; i < window; i++) send();
          }
          lastSeen = received;
        }, STALL_MS);
        for (let i = 0; i < window; i++) send();
        return;
      }
      if (stopping) return;
      received++;
      buckets?.echo();
      if (inflight > 0) inflight--;
      send();
    });
    socket.bind(0, () => send());
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true, allowPositionals: false,
    options: { to: { type: 'string' }, secs: { type: 'string' }, window: { type: 'string' }, size: { type: 'string' }, 'bucket-ms': { type: 'string' } },
  });
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(values.to ?? '');
  if (!m) throw new Error(`--to wants ipv4:port, got ${String(values.to)}`);
  const secs = Number(values.secs ?? '3');
  const window = Number(values.window ?? '32');
  const size = Math.max(HEADER_BYTES, Number(values.size ?? '64'));
  if (!(secs > 0) || !Number.isInteger(window) || window < 1) throw new Error('--secs must be > 0 and --window a whole number ≥ 1');
  const bucketMs = Number(values['bucket-ms'] ?? '0');
  if (!Number.isInteger(bucketMs) || bucketMs < 0) throw new Error('--bucket-ms must be a whole number ≥ 0');
  const report = await flood(m[1]!, Number(m[2]), secs, window, size, bucketMs);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`udp-flood: ${e instanceof Error ? e.message : String(e)}\n`);
  process.stdout.write(`${JSON.stringify({ error: e instanceof Error ? e.message : String(e) })}\n`);
  process.exitCode = 1;
});
