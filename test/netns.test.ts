// The network test kit against the real kernel: a test namespace is created and always removed, a tap
// opened into it shows up there, Ethernet frames cross the tap fd both ways, and udp-peer against an echo
// server inside a namespace loses nothing. Traffic stays inside namespaces made here, in 10.77.0.0/16.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Tap } from '../src/sys/tap.js';
import { NETNS_RUN_DIR, type TestNetns, createTestNetns, netnsSkipReason, withNetns } from './netns.js';

const skip = netnsSkipReason() ?? false;
const UDP_PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'udp-peer.js');
const NEIGHBOR_MAC = '02:00:00:77:01:02';

let tapCounter = 0;
function tapName(): string {
  return `svn${process.pid.toString(36)}x${tapCounter++}`;
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function ipv4Checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i]! << 8) | header[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * An Ethernet II frame carrying IPv4/UDP (UDP checksum 0: none). Layout: 0 dst MAC, 6 src MAC, 12 ethertype
 * 0x0800; 14 IPv4 header (20 bytes: 9 protocol, 10 checksum, 12 src, 16 dst); 34 UDP header (8 bytes); 42 payload.
 */
function udpFrame(o: { dstMac: string; srcMac: string; srcIp: string; dstIp: string; srcPort: number; dstPort: number; payload: Uint8Array }): Uint8Array {
  const f = new Uint8Array(42 + o.payload.length);
  const v = new DataView(f.buffer);
  f.set(macBytes(o.dstMac), 0);
  f.set(macBytes(o.srcMac), 6);
  v.setUint16(12, 0x0800);
  const ip = f.subarray(14, 34);
  ip[0] = 0x45;
  v.setUint16(16, 20 + 8 + o.payload.length);
  ip[8] = 64; // TTL
  ip[9] = 17; // UDP
  ip.set(ipBytes(o.srcIp), 12);
  ip.set(ipBytes(o.dstIp), 16);
  v.setUint16(24, ipv4Checksum(ip));
  v.setUint16(34, o.srcPort);
  v.setUint16(36, o.dstPort);
  v.setUint16(38, 8 + o.payload.length);
  f.set(o.payload, 42);
  return f;
}

/** Reads frames from the tap until one satisfies match, or throws after timeoutMs. */
async function readFrameUntil(tap: Tap, match: (f: Uint8Array) => boolean, timeoutMs: number): Promise<Uint8Array> {
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + timeoutMs;
  const seen: string[] = [];
  while (Date.now() < deadline) {
    const n = tap.read(buf);
    if (n < 0) { await sleep(5); continue; }
    const frame = buf.slice(0, n);
    if (match(frame)) return frame;
    seen.push(`ethertype 0x${new DataView(frame.buffer).getUint16(12).toString(16)} (${n} bytes)`);
  }
  throw new Error(`no matching frame within ${timeoutMs} ms; saw: ${seen.join(', ') || 'nothing'}`);
}

/** The first JSON line of a child's stdout, or rejects on exit/timeout. */
function firstJsonLine(child: import('node:child_process').ChildProcess, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited (${code}) before a line; stderr: ${err}`)); });
  });
}

function macOf(ns: TestNetns, dev: string): string {
  return ns.exec('cat', [`/sys/class/net/${dev}/address`]).trim();
}

describe('netns helper', { skip }, () => {
  it('creates a namespace with loopback up and removes it on dispose, twice harmlessly', () => {
    const ns = createTestNetns();
    try {
      assert.match(ns.name, new RegExp(`^svtest-${process.pid}-\\d+$`));
      assert.ok(existsSync(path.join(NETNS_RUN_DIR, ns.name)));
      assert.match(ns.exec('ip', ['-br', 'link', 'show', 'lo']), /\bUNKNOWN\b|\bUP\b/);
      assert.doesNotMatch(ns.exec('ip', ['-br', 'link']), /eth0/, 'the namespace has only its own interfaces');
    } finally {
      ns.dispose();
    }
    assert.ok(!existsSync(path.join(NETNS_RUN_DIR, ns.name)));
    ns.dispose();
  });

  it('withNetns removes the namespace and what runs inside when the body throws', async () => {
    let name = '';
    let exited: Promise<unknown> | undefined;
    await assert.rejects(withNetns(async (ns) => {
      name = ns.name;
      const child = ns.spawn('sleep', ['600']);
      exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal)));
      await sleep(50);
      throw new Error('test body failed');
    }), /test body failed/);
    assert.ok(name && !existsSync(path.join(NETNS_RUN_DIR, name)));
    assert.ok(exited);
    const outcome = await Promise.race([exited, sleep(5000).then(() => 'still running')]);
    assert.equal(outcome, 'SIGKILL', 'the program inside was killed by PID');
  });
});

describe('tap in a namespace', { skip }, () => {
  it('a tap opened with { netns } shows up inside the namespace, not here, and goes with its fd', async () => {
    const fds = openFdCount();
    await withNetns((ns) => {
      const name = tapName();
      const tap = Tap.open(name, { netns: ns.name });
      try {
        assert.ok(!existsSync(`/sys/class/net/${name}`), 'not in the host namespace');
        assert.match(ns.exec('ip', ['-br', 'link', 'show', name]), new RegExp(`^${name}\\b`));
        ns.addTap(name, '10.77.3.1/24');
        assert.match(ns.exec('ip', ['-br', 'addr', 'show', name]), /10\.77\.3\.1\/24/);
      } finally {
        tap.close();
      }
      assert.throws(() => ns.exec('ip', ['link', 'show', name]), 'gone once its fd is closed');
    });
    assert.equal(openFdCount(), fds);
  });

  it('a UDP datagram sent inside the namespace comes out of the tap fd as an Ethernet frame', async () => {
    await withNetns(async (ns) => {
      const name = tapName();
      const tap = Tap.open(name, { netns: ns.name });
      try {
        ns.addTap(name, '10.77.1.1/24');
        ns.exec('ip', ['neigh', 'replace', '10.77.1.2', 'lladdr', NEIGHBOR_MAC, 'dev', name, 'nud', 'permanent']);
        const tapMac = macOf(ns, name);
        ns.exec(process.execPath, ['-e', `
          const s = require('node:dgram').createSocket('udp4');
          s.bind(40001, '10.77.1.1', () => s.send('hello tap', 9999, '10.77.1.2', (e) => { if (e) throw e; s.close(); }));`]);
        const frame = await readFrameUntil(tap, (f) => f.length >= 42 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 17, 3000);
        const v = new DataView(frame.buffer);
        assert.deepEqual([...frame.subarray(0, 6)], macBytes(NEIGHBOR_MAC), 'to the static neighbor');
        assert.deepEqual([...frame.subarray(6, 12)], macBytes(tapMac), 'from the namespace side of the tap');
        assert.deepEqual([...frame.subarray(26, 30)], ipBytes('10.77.1.1'));
        assert.deepEqual([...frame.subarray(30, 34)], ipBytes('10.77.1.2'));
        assert.equal(v.getUint16(34), 40001);
        assert.equal(v.getUint16(36), 9999);
        assert.equal(new TextDecoder().decode(frame.subarray(42)), 'hello tap');
      } finally {
        tap.close();
      }
    });
  });

  it('a frame written to the tap fd reaches a UDP listener inside the namespace', async () => {
    await withNetns(async (ns) => {
      const name = tapName();
      const tap = Tap.open(name, { netns: ns.name });
      try {
        ns.addTap(name, '10.77.2.1/24');
        const tapMac = macOf(ns, name);
        const listener = ns.spawn(process.execPath, ['-e', `
          const s = require('node:dgram').createSocket('udp4');
          s.on('message', (m, r) => { console.log(JSON.stringify({ text: m.toString(), from: r.address + ':' + r.port })); s.close(); });
          s.bind(5555, '10.77.2.1', () => console.log(JSON.stringify({ ready: true })));
          setTimeout(() => process.exit(3), 10000);`]);
        const lines: Array<Record<string, unknown>> = [];
        let out = '';
        listener.stdout?.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
            lines.push(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
            out = out.slice(nl + 1);
          }
        });
        const until = async (pred: () => boolean, what: string): Promise<void> => {
          for (const end = Date.now() + 5000; !pred(); await sleep(10)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
        };
        await until(() => lines.some((l) => l.ready === true), 'the listener to bind');
        const frame = udpFrame({ dstMac: tapMac, srcMac: NEIGHBOR_MAC, srcIp: '10.77.2.2', dstIp: '10.77.2.1', srcPort: 4242, dstPort: 5555, payload: new TextEncoder().encode('from the host side') });
        assert.equal(tap.write(frame), true);
        await until(() => lines.some((l) => typeof l.text === 'string'), 'the datagram inside the namespace');
        assert.deepEqual(lines.find((l) => typeof l.text === 'string'), { text: 'from the host side', from: '10.77.2.2:4242' });
      } finally {
        tap.close();
      }
    });
  });
});

describe('udp-peer', { skip }, () => {
  it('against an echo server inside the namespace it reports 0 lost', async () => {
    await withNetns(async (ns) => {
      ns.exec('ip', ['addr', 'add', '10.77.0.2/32', 'dev', 'lo']);
      const echo = ns.spawn(process.execPath, [UDP_PEER, '--echo', '10.77.0.2:7', '--timeout-ms', '30000']);
      assert.deepEqual(await firstJsonLine(echo, 10_000), { listening: '10.77.0.2:7' });
      const r = await ns.run(process.execPath, [UDP_PEER, '--to', '10.77.0.2:7', '--rate', '1000', '--count', '500', '--timeout-ms', '10000'], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 1, 'one JSON line');
      const report = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.equal(report.sent, 500);
      assert.equal(report.received, 500);
      assert.equal(report.lostCount, 0);
      assert.deepEqual(report.lost, []);
      assert.equal(report.duplicates, 0);
      assert.equal(report.timedOut, false);
      for (const k of ['rttUsP50', 'rttUsP99', 'rttUsMax']) assert.ok(typeof report[k] === 'number' && report[k] >= 0, `${k}: ${String(report[k])}`);
      assert.ok((report.rttUsP50 as number) <= (report.rttUsP99 as number) && (report.rttUsP99 as number) <= (report.rttUsMax as number));
      // 500 datagrams at 1000/s take about half a second: the rate is kept, not a burst.
      assert.ok((report.durationMs as number) >= 400, `durationMs ${String(report.durationMs)}`);
    });
  });

  it('with nobody answering it reports everything lost and stops by itself', async () => {
    await withNetns(async (ns) => {
      ns.exec('ip', ['addr', 'add', '10.77.0.3/32', 'dev', 'lo']);
      const started = Date.now();
      const r = await ns.run(process.execPath, [UDP_PEER, '--to', '10.77.0.3:7', '--rate', '1000', '--count', '50', '--linger-ms', '200', '--timeout-ms', '3000'], { timeoutMs: 10_000 });
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
      assert.equal(report.sent, 50);
      assert.equal(report.received, 0);
      assert.equal(report.lostCount, 50);
      assert.deepEqual(report.lost, Array.from({ length: 20 }, (_, i) => i));
      assert.equal(report.rttUsP50, null);
      assert.ok(Date.now() - started < 5000);
    });
  });

  it('refuses bad arguments with exit code 2', async () => {
    await withNetns(async (ns) => {
      const r = await ns.run(process.execPath, [UDP_PEER, '--to', 'nowhere'], { timeoutMs: 10_000 });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /host:port/);
    });
  });
});
