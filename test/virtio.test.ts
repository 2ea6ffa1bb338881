// virtio devices end to end on /dev/kvm with the guest kit's user-mode drivers: blkcheck writes and
// verifies a disk image (checked again on the host), netecho answers a 1 kHz UDP stream sent from a
// network namespace through a tap, vconecho echoes host input on the virtio console, rngcheck reads
// random bytes. Every guest reports through its COM1 console, which the tests read.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Machine, type MachineExit } from '../src/vmm/machine.js';
import type { VirtioAttachment } from '../src/vmm/virtio-host.js';
import { BlockFile } from '../src/sys/block-file.js';
import { Tap } from '../src/sys/tap.js';
import { ROOT } from './helpers.js';
import { checkBlkcheckImage } from './blkcheck-image.js';
import { withNetns } from './netns.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sv-virtio-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run { machine: Machine; out: () => string; extra: () => string }

function boot(guest: string, cmdline: string, devices: VirtioAttachment[], extra?: { text: string }): Run {
  let text = '';
  const machine = Machine.create({ name: `t-${guest}`, kernel: readFileSync(path.join(ROOT, 'guest', 'build', `${guest}.elf`)), cmdline, memSizeMib: 32, vcpus: 1 },
    { write: (b) => { text += Buffer.from(b).toString('latin1'); } }, undefined, devices);
  machine.start();
  return { machine, out: () => text, extra: () => extra?.text ?? '' };
}

async function finish(r: Run, timeoutMs: number): Promise<MachineExit> {
  const t = setTimeout(() => void r.machine.stop(), timeoutMs);
  try {
    return await r.machine.exited;
  } finally {
    clearTimeout(t);
  }
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('virtio devices with guest-kit drivers', () => {
  it('blkcheck writes, flushes, reads back and discards; the image verifies on the host', async () => {
    const img = path.join(dir, 'disk.img');
    writeFileSync(img, Buffer.alloc(2 << 20));
    const r = boot('blkcheck', 'passes=3 discard=1 seed=7', [{ kind: 'block', id: 'vda', file: BlockFile.open(img, { readOnly: false }), serial: 'sv-test-disk' }]);
    const exit = await finish(r, 60_000);
    assert.deepEqual(exit, { reason: 'guest-exit', status: 0 }, r.out());
    assert.match(r.out(), /^blk id sv-test-disk$/m);
    assert.match(r.out(), /^blk discard ok$/m);
    assert.match(r.out(), /^blk pass 3 ok 512 errors 0$/m);
    const check = checkBlkcheckImage(img, 512);
    assert.deepEqual(check.errors, []);
    assert.deepEqual([...check.passes], [[3, 512]], 'every block holds the last pass');
  });

  it('a read-only disk refuses writes', async () => {
    const img = path.join(dir, 'ro.img');
    writeFileSync(img, Buffer.alloc(1 << 20, 0x5a));
    const r = boot('blkcheck', 'ro=expect passes=1', [{ kind: 'block', id: 'vda', file: BlockFile.open(img, { readOnly: true }), serial: 'ro' }]);
    await finish(r, 30_000);
    assert.match(r.out(), /^blk start capacity 2048 blocks 256 ro 1$/m);
    assert.match(r.out(), /^blk ro ok$/m);
    assert.ok(readFileSync(img).every((b) => b === 0x5a), 'the image is untouched');
  });

  it('rngcheck gets random bytes from the host', async () => {
    const r = boot('rngcheck', 'bytes=65536', [{ kind: 'rng', id: 'rng' }]);
    assert.deepEqual(await finish(r, 30_000), { reason: 'guest-exit', status: 0 }, r.out());
    assert.match(r.out(), /^rng ok \d+$/m);
  });

  it('vconecho echoes host input on the virtio console, byte for byte', async () => {
    const got = { text: '' };
    const r = boot('vconecho', '', [{ kind: 'console', id: 'vconsole', sink: { write: (b) => { got.text += Buffer.from(b).toString('latin1'); } } }], got);
    try {
      await until(() => got.text.includes('vcon hello\n'), 20_000, 'the hello line');
      const sent = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}\n`).join('');
      for (let i = 0; i < sent.length; i += 333) r.machine.virtioDevices!.consoleInput('vconsole', Buffer.from(sent.slice(i, i + 333), 'latin1'));
      await until(() => got.text.length >= 'vcon hello\n'.length + sent.length, 20_000, 'the echo');
      assert.equal(got.text, `vcon hello\n${sent}`);
    } finally {
      await r.machine.stop();
    }
  });

  it('a hostile driver gets NEEDS_RESET or a refusal for each broken rule, and the VMM and a neighbour VM go on', async () => {
    const witness = boot('heartbeat', 'period_us=2000', []);
    try {
      const r = boot('virtioevil', '', [{ kind: 'rng', id: 'rng' }]);
      assert.deepEqual(await finish(r, 30_000), { reason: 'guest-exit', status: 0 }, r.out());
      for (const c of ['loop', 'oob', 'wrap', 'nested', 'size3', 'features', 'avail', 'recovered']) assert.match(r.out(), new RegExp(`^evil ${c} ok$`, 'm'), r.out());
      const before = witness.out().length;
      await until(() => witness.out().length > before + 40, 5_000, 'the neighbour VM to go on');
      assert.equal(witness.machine.state, 'running');
    } finally {
      await witness.machine.stop();
    }
  });

  it('netecho answers a 1 kHz UDP stream from a network namespace with none lost', async () => {
    await withNetns(async (ns) => {
      const tapName = `svt${process.pid % 100000}`;
      const tap = Tap.open(tapName, { netns: ns.name });
      ns.addTap(tapName, '10.77.0.1/24');
      const r = boot('netecho', 'ip=10.77.0.2', [{ kind: 'net', id: 'eth0', tap, mac: '02:00:00:77:00:02' }]);
      try {
        await until(() => /^net start/m.test(r.out()), 20_000, 'netecho to start');
        const res = await ns.run('node', [path.join(ROOT, 'dist', 'test', 'udp-peer.js'), '--to', '10.77.0.2:7', '--rate', '1000', '--count', '2000'], { timeoutMs: 30_000 });
        const summary = JSON.parse(res.stdout.trim().split('\n').pop()!) as { sent: number; received: number; lostCount: number; duplicates: number };
        assert.equal(summary.sent, 2000);
        assert.equal(summary.lostCount, 0, res.stdout);
        assert.equal(summary.duplicates, 0);
        assert.equal(summary.received, 2000);
      } finally {
        await r.machine.stop();
      }
    });
  });
});
