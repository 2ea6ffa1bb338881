// A UDP load program for network tests, meant to run inside a test namespace (`ip netns exec`). By default
// it sends numbered, timestamped datagrams at a fixed rate, collects the echoes and prints ONE JSON line of
// loss, order and round-trip figures; with --echo it is the echo server. It always stops by itself.
//
//   node dist/test/udp-peer.js --to 10.77.0.2:7 [--rate 1000] [--count 1000] [--size 64] [--timeout-ms M] [--linger-ms 1000]
//   node dist/test/udp-peer.js --echo 10.77.0.2:7 [--timeout-ms 60000]

import dgram from 'node:dgram';

/** Layout of a probe datagram (little-endian): 0 u32 magic "SVUP", 4 u32 sequence number, 8 u64 send time (ns, hrtime). */
const MAGIC = 0x50555653;
const HEADER_BYTES = 16;
const MAX_LOST_LISTED = 20;

export interface UdpPeerReport {
  sent: number;
  received: number;
  /** The first few sequence numbers that never came back. */
  lost: number[];
  lostCount: number;
  duplicates: number;
  outOfOrder: number;
  sendErrors: number;
  rttUsP50: number | null;
  rttUsP99: number | null;
  rttUsMax: number | null;
  timedOut: boolean;
  durationMs: number;
}

interface Endpoint { host: string; port: number }

class UsageError extends Error {}

function parseEndpoint(s: string | undefined, flag: string): Endpoint {
  const m = s === undefined ? null : /^(.+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`${flag} wants host:port, got ${String(s)}`);
  return { host: m[1]!, port };
}

function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) throw new UsageError(`expected --flag value pairs, got ${k}`);
    out.set(k.slice(2), v);
  }
  return out;
}

function wholeNumber(args: Map<string, string>, key: string, fallback: number, min: number): number {
  const s = args.get(key);
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${key} wants a whole number >= ${min}, got ${s}`);
  return n;
}

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
}

function runSender(args: Map<string, string>): Promise<UdpPeerReport> {
  const to = parseEndpoint(args.get('to'), '--to');
  const ratePps = wholeNumber(args, 'rate', 1000, 1);
  const count = wholeNumber(args, 'count', 1000, 0);
  const sizeBytes = wholeNumber(args, 'size', 64, HEADER_BYTES);
  const lingerMs = wholeNumber(args, 'linger-ms', 1000, 0);
  const timeoutMs = wholeNumber(args, 'timeout-ms', Math.ceil((count / ratePps) * 1000) + lingerMs + 2000, 1);

  const seen = new Uint8Array(count);
  const rttsUs: number[] = [];
  let sent = 0;
  let received = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let sendErrors = 0;
  let highestSeq = -1;
  const start = process.hrtime.bigint();
  const socket = dgram.createSocket(to.host.includes(':') ? 'udp6' : 'udp4');

  return new Promise((resolve) => {
    let finished = false;
    let tick: NodeJS.Timeout | undefined;
    let linger: NodeJS.Timeout | undefined;
    const finish = (timedOut: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(tick);
      clearTimeout(linger);
      clearTimeout(deadline);
      socket.close();
      const lost: number[] = [];
      for (let s = 0; s < sent; s++) if (!seen[s]) lost.push(s);
      const sorted = Float64Array.from(rttsUs).sort();
      resolve({
        sent, received, lost: lost.slice(0, MAX_LOST_LISTED), lostCount: lost.length, duplicates, outOfOrder, sendErrors,
        rttUsP50: percentile(sorted, 50), rttUsP99: percentile(sorted, 99), rttUsMax: sorted.length ? Math.round(sorted[sorted.length - 1]!) : null,
        timedOut, durationMs: Math.round(Number(process.hrtime.bigint() - start) / 1e6),
      });
    };
    const deadline = setTimeout(() => finish(true), timeoutMs);

    socket.on('error', () => { sendErrors++; }); // e.g. ICMP errors; the datagrams count as lost
    socket.on('message', (msg) => {
      if (msg.byteLength < HEADER_BYTES || msg.readUInt32LE(0) !== MAGIC) return;
      const seq = msg.readUInt32LE(4);
      if (seq >= sent) return;
      if (seen[seq]) { duplicates++; return; }
      seen[seq] = 1;
      received++;
      if (seq < highestSeq) outOfOrder++;
      else highestSeq = seq;
      rttsUs.push(Number(process.hrtime.bigint() - msg.readBigUInt64LE(8)) / 1000);
      if (received === count && sent === count) finish(false);
    });

    // Fixed rate with catch-up: each tick sends every datagram due by now, so timer jitter does not lower the rate.
    const sendDue = (): void => {
      if (finished) return;
      const elapsedNs = Number(process.hrtime.bigint() - start);
      const due = Math.min(count, Math.floor((elapsedNs / 1e9) * ratePps) + 1);
      while (sent < due) {
        const buf = Buffer.alloc(sizeBytes);
        buf.writeUInt32LE(MAGIC, 0);
        buf.writeUInt32LE(sent, 4);
        buf.writeBigUInt64LE(process.hrtime.bigint(), 8);
        sent++;
        socket.send(buf, to.port, to.host, (err) => { if (err) sendErrors++; });
      }
      if (sent < count) tick = setTimeout(sendDue, Math.max(0, Math.min(10, 1000 / ratePps - 0.5)));
      else if (received === count) finish(false);
      else linger = setTimeout(() => finish(false), lingerMs);
    };
    socket.bind(0, () => sendDue());
  });
}

function runEcho(args: Map<string, string>): Promise<{ echoed: number }> {
  const at = parseEndpoint(args.get('echo'), '--echo');
  const timeoutMs = wholeNumber(args, 'timeout-ms', 60_000, 1);
  const socket = dgram.createSocket(at.host.includes(':') ? 'udp6' : 'udp4');
  let echoed = 0;
  return new Promise((resolve, reject) => {
    const stop = (): void => {
      clearTimeout(deadline);
      socket.close();
      resolve({ echoed });
    };
    const deadline = setTimeout(stop, timeoutMs);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    socket.on('error', (e) => { clearTimeout(deadline); socket.close(); reject(e); });
    socket.on('message', (msg, rinfo) => {
      echoed++;
      socket.send(msg, rinfo.port, rinfo.address);
    });
    socket.bind(at.port, at.host, () => {
      process.stdout.write(`${JSON.stringify({ listening: `${at.host}:${at.port}` })}\n`);
    });
  });
}

async function main(): Promise<void> {
  let args: Map<string, string>;
  try {
    args = parseArgs(process.argv.slice(2));
    if (args.has('echo') === args.has('to')) throw new UsageError('give exactly one of --to host:port (sender) or --echo host:port (echo server)');
    const result = args.has('echo') ? await runEcho(args) : await runSender(args);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  } catch (e) {
    process.stderr.write(`udp-peer: ${(e as Error).message}\n`);
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  }
}

void main();
