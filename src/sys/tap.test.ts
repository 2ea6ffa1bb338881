// Tap against the real /dev/net/tun, in this network namespace but with no traffic: interfaces appear
// and vanish with their fd, flags, names, and every error code. Frames through a tap are tested in
// test/netns.test.ts, inside a namespace of their own. Every test checks it leaves no fd open.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, native } from './native.js';
import { TUN_DEVICE_PATH, Tap, TapError, type TapErrorCode, checkInterfaceName } from './tap.js';

const skipReason = process.getuid?.() !== 0 ? 'needs root (CAP_NET_ADMIN) to create taps'
  : !existsSync(TUN_DEVICE_PATH) ? `${TUN_DEVICE_PATH} is missing` : undefined;

let counter = 0;
/** A name no other test run uses at the same time: pid in base 36 plus a counter, well under 15 bytes. */
function uniqueName(): string {
  return `svt${process.pid.toString(36)}x${counter++}`;
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function itTap(name: string, body: () => void): void {
  it(name, { skip: skipReason ?? false }, () => {
    const before = openFdCount();
    body();
    assert.equal(openFdCount(), before, 'open fds before and after the test');
  });
}

function expectTapError(fn: () => unknown, code: TapErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TapError, `not a TapError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function fdFlags(fd: number): number {
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m);
  return parseInt(m[1]!, 8);
}

function tunFlags(name: string): number {
  return parseInt(readFileSync(`/sys/class/net/${name}/tun_flags`, 'utf8').trim(), 16);
}

const exists = (name: string): boolean => existsSync(`/sys/class/net/${name}`);

describe('Tap: open and close', () => {
  itTap('creates the interface, nonblocking and close-on-exec, and it vanishes on close', () => {
    const name = uniqueName();
    const tap = Tap.open(name);
    try {
      assert.equal(tap.name, name);
      assert.ok(exists(name), 'interface exists while the fd is open');
      assert.equal(tunFlags(name) & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), IFF_TAP | IFF_NO_PI);
      const flags = fdFlags(tap.fd);
      assert.ok(flags & 0o4000, 'O_NONBLOCK');
      assert.ok(flags & 0o2000000, 'O_CLOEXEC');
      assert.equal((flags & 3), 2, 'O_RDWR');
    } finally {
      tap.close();
    }
    assert.ok(!exists(name), 'a non-persistent tap is gone with its last fd');
    tap.close(); // harmless
  });

  itTap('a "%d" template gets a kernel-chosen name', () => {
    const tap = Tap.open(`svt${process.pid.toString(36)}n%d`);
    try {
      assert.match(tap.name, new RegExp(`^svt${process.pid.toString(36)}n\\d+$`));
      assert.ok(exists(tap.name));
    } finally {
      tap.close();
    }
  });

  itTap('vnetHdr sets IFF_VNET_HDR, and the header size can be set to 12 but not below 10', () => {
    const tap = Tap.open(uniqueName(), { vnetHdr: true });
    try {
      assert.ok(tunFlags(tap.name) & IFF_VNET_HDR);
      tap.setVnetHdrSize(12);
      tap.setVnetHdrSize(10);
      expectTapError(() => tap.setVnetHdrSize(4), 'ERR_TAP_IO', /header size/);
    } finally {
      tap.close();
    }
  });

  itTap('read returns -1 with nothing queued; a write to a down interface is ERR_TAP_DOWN', () => {
    const tap = Tap.open(uniqueName());
    try {
      assert.equal(tap.read(new Uint8Array(2048)), -1);
      expectTapError(() => tap.write(new Uint8Array(60)), 'ERR_TAP_DOWN', /ip link set dev .* up/);
    } finally {
      tap.close();
    }
  });

  itTap('fromFd adopts an attached fd and closes it', () => {
    const name = uniqueName();
    const raw = native().openTap(name, IFF_TAP | IFF_NO_PI);
    const tap = Tap.fromFd(raw.fd, raw.name);
    assert.equal(tap.fd, raw.fd);
    assert.equal(tap.name, name);
    assert.equal(tap.read(new Uint8Array(64)), -1);
    tap.close();
    assert.ok(!exists(name));
  });
});

describe('Tap: errors', () => {
  itTap('invalid names are refused before any syscall', () => {
    for (const bad of ['', 'x'.repeat(16), 'a/b', 'a b', 'a:b', '.', '..', 'a%s', 'a%d%d', 'é'.repeat(8), 'tab\tx']) {
      expectTapError(() => Tap.open(bad), 'ERR_TAP_NAME');
    }
    checkInterfaceName('x'.repeat(15));
    checkInterfaceName('svtap%d');
  });

  itTap('a name held by an interface that is not a tap', () => {
    expectTapError(() => Tap.open('lo'), 'ERR_TAP_NAME', /not a tap/);
  });

  itTap('a tap already open elsewhere is busy; the first keeps working', () => {
    const name = uniqueName();
    const first = Tap.open(name);
    try {
      expectTapError(() => Tap.open(name), 'ERR_TAP_BUSY', /already open/);
      assert.equal(first.read(new Uint8Array(64)), -1);
      assert.ok(exists(name));
    } finally {
      first.close();
    }
    assert.ok(!exists(name));
  });

  itTap('a missing network namespace, and nothing is left behind', () => {
    const name = uniqueName();
    expectTapError(() => Tap.open(name, { netns: `svtest-missing-${process.pid}` }), 'ERR_TAP_NETNS', /ip netns add/);
    expectTapError(() => Tap.open(name, { netns: '../etc' }), 'ERR_TAP_NETNS', /plain name/);
    assert.ok(!exists(name));
  });

  it('without root the tun device says permission denied', { skip: skipReason ?? false }, () => {
    const tapJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tap.js');
    const script = `import { Tap } from ${JSON.stringify(`file://${tapJs}`)};
      try { Tap.open('svtnobody'); console.log('opened'); } catch (e) { console.log(e.code ?? String(e)); }`;
    let out: string;
    try {
      out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '--input-type=module', '-e', script],
        { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (e) {
      assert.fail(`setpriv failed: ${(e as Error).message}`);
    }
    assert.ok(out === 'ERR_TAP_PERMISSION', `as nobody: ${out}`);
    assert.ok(!exists('svtnobody'));
  });
});
