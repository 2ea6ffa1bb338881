// BlockFile against real files in a temp directory (and a loop device, when losetup works): positioned
// reads and writes, zeros past the end, discard, the open errors, and a property test of random writes,
// discards and reads against a model buffer. Every test checks it leaves no fd open.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { BLOCK_FILE_SECTOR_BYTES, BlockFile, BlockFileError, type BlockFileErrorCode } from './block-file.js';
import { O_RDWR, native } from './native.js';

const MIB = 1024 * 1024;

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function itNoLeak(name: string, body: () => void): void {
  it(name, () => {
    const before = openFdCount();
    body();
    assert.equal(openFdCount(), before, 'open fds before and after the test');
  });
}

function expectBlockError(fn: () => unknown, code: BlockFileErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BlockFileError, `not a BlockFileError: ${String(e)}`);
    assert.equal(e.code, code);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function isCloexec(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(flags);
  return (parseInt(flags[1]!, 8) & 0o2000000) !== 0;
}

let dir = '';
let counter = 0;

/** A new image file of sizeBytes in the temp directory, filled by fill(i) or sparse (zeros). */
function image(sizeBytes: number, fill?: (i: number) => number): string {
  const p = path.join(dir, `disk-${counter++}.img`);
  if (fill) writeFileSync(p, Uint8Array.from({ length: sizeBytes }, (_, i) => fill(i)));
  else { writeFileSync(p, ''); truncateSync(p, sizeBytes); }
  return p;
}

function withFile<T>(p: string, readOnly: boolean, body: (f: BlockFile) => T): T {
  const f = BlockFile.open(p, { readOnly });
  try {
    return body(f);
  } finally {
    f.close();
  }
}

before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-block-file-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

describe('BlockFile: reads and writes', () => {
  itNoLeak('reads what is in the file and writes land at their byte offset', () => {
    const p = image(4096, (i) => i & 0xff);
    withFile(p, false, (f) => {
      assert.equal(f.sizeBytes, 4096);
      assert.equal(f.readOnly, false);
      assert.ok(isCloexec(f.fd));
      const b = new Uint8Array(16);
      f.read(b, 1000);
      assert.deepEqual([...b], Array.from({ length: 16 }, (_, i) => (1000 + i) & 0xff));
      f.write(new Uint8Array([0xaa, 0xbb, 0xcc]), 513);
      f.flush();
    });
    const bytes = readFileSync(p);
    assert.deepEqual([...bytes.subarray(512, 517)], [0, 0xaa, 0xbb, 0xcc, 516 & 0xff]);
  });

  itNoLeak('reads past the end of the file are zeros', () => {
    withFile(image(1024, () => 0x11), true, (f) => {
      const b = new Uint8Array(1024).fill(0xee);
      f.read(b, 512);
      assert.ok(b.subarray(0, 512).every((x) => x === 0x11));
      assert.ok(b.subarray(512).every((x) => x === 0), 'the part past the end reads as zeros');
      b.fill(0xee);
      f.read(b, 1 << 30);
      assert.ok(b.every((x) => x === 0));
    });
  });

  itNoLeak('offsets beyond 4 GiB work (a sparse 1 TiB image)', () => {
    const size = 2 ** 40;
    withFile(image(size), false, (f) => {
      assert.equal(f.sizeBytes, size);
      const at = 2 ** 32 + 3 * BLOCK_FILE_SECTOR_BYTES + 7;
      const last = size - 4;
      f.write(new Uint8Array([1, 2, 3, 4]), at);
      f.write(new Uint8Array([9, 8, 7, 6]), last);
      const b = new Uint8Array(4);
      f.read(b, at);
      assert.deepEqual([...b], [1, 2, 3, 4]);
      f.read(b, last);
      assert.deepEqual([...b], [9, 8, 7, 6]);
      f.read(b, at - 2 ** 32);
      assert.deepEqual([...b], [0, 0, 0, 0], 'no 32-bit wrap-around');
    });
  });

  itNoLeak('writes, discards and offsets are checked', () => {
    withFile(image(2048), false, (f) => {
      assert.throws(() => f.write(new Uint8Array(2), 2047), RangeError);
      assert.throws(() => f.write(new Uint8Array(1), -1), RangeError);
      assert.throws(() => f.read(new Uint8Array(1), 1.5), RangeError);
      assert.throws(() => f.read(new Uint8Array(1), Number.NaN), RangeError);
      assert.throws(() => f.discard(1024, 1025), RangeError);
      f.write(new Uint8Array(1), 2047);
    });
  });

  itNoLeak('a read-only file refuses writes and discards, with a stable code', () => {
    const p = image(1024, () => 5);
    withFile(p, true, (f) => {
      assert.equal(f.readOnly, true);
      expectBlockError(() => f.write(new Uint8Array(1), 0), 'ERR_BLOCK_FILE_READ_ONLY', /readOnly: false/);
      expectBlockError(() => f.discard(0, 512), 'ERR_BLOCK_FILE_READ_ONLY');
      expectBlockError(() => f.writeZeroes(0, 512), 'ERR_BLOCK_FILE_READ_ONLY');
      f.flush();
    });
    assert.ok(readFileSync(p).every((x) => x === 5));
  });

  itNoLeak('discard punches a hole: zeros, same size, fewer blocks', () => {
    const p = image(4 * MIB, () => 0x5a);
    const blocksBefore = statSync(p).blocks;
    withFile(p, false, (f) => {
      f.discard(MIB, 2 * MIB);
      const b = new Uint8Array(4 * MIB);
      f.read(b, 0);
      assert.ok(b.subarray(0, MIB).every((x) => x === 0x5a));
      assert.ok(b.subarray(MIB, 3 * MIB).every((x) => x === 0));
      assert.ok(b.subarray(3 * MIB).every((x) => x === 0x5a));
      f.discard(0, 0);
    });
    const st = statSync(p);
    assert.equal(st.size, 4 * MIB);
    assert.ok(st.blocks < blocksBefore, `blocks ${st.blocks} should drop below ${blocksBefore}`);
  });

  itNoLeak('writeZeroes zeroes a range larger than its chunk', () => {
    const p = image(3 * MIB, () => 0xff);
    withFile(p, false, (f) => f.writeZeroes(512, 2 * MIB + 512));
    const bytes = readFileSync(p);
    assert.equal(bytes[511], 0xff);
    assert.ok(bytes.subarray(512, 2 * MIB + 1024).every((x) => x === 0));
    assert.equal(bytes[2 * MIB + 1024], 0xff);
  });
});

describe('BlockFile: open errors and fds', () => {
  itNoLeak('a missing file', () => {
    expectBlockError(() => BlockFile.open(path.join(dir, 'nope.img'), { readOnly: true }), 'ERR_BLOCK_FILE_NOT_FOUND', /does not exist/);
    expectBlockError(() => BlockFile.open(path.join(dir, 'nodir', 'x.img'), { readOnly: false }), 'ERR_BLOCK_FILE_NOT_FOUND');
  });

  itNoLeak('a directory, a character device and a FIFO are not disk images (and the FIFO does not hang)', () => {
    const sub = path.join(dir, `sub-${counter++}`);
    mkdirSync(sub);
    expectBlockError(() => BlockFile.open(sub, { readOnly: true }), 'ERR_BLOCK_FILE_TYPE', /directory/);
    expectBlockError(() => BlockFile.open('/dev/null', { readOnly: false }), 'ERR_BLOCK_FILE_TYPE', /character device/);
    const fifo = path.join(dir, `fifo-${counter++}`);
    execFileSync('mkfifo', [fifo]);
    expectBlockError(() => BlockFile.open(fifo, { readOnly: true }), 'ERR_BLOCK_FILE_TYPE', /FIFO/);
  });

  itNoLeak('a size that is not whole sectors says how to pad it', () => {
    const p = image(1000);
    expectBlockError(() => BlockFile.open(p, { readOnly: false }), 'ERR_BLOCK_FILE_SIZE', /1000 bytes.*truncate -s 1024/);
  });

  itNoLeak('an empty file is a zero-sector disk', () => {
    withFile(image(0), false, (f) => {
      assert.equal(f.sizeBytes, 0);
      const b = new Uint8Array(8).fill(1);
      f.read(b, 0);
      assert.ok(b.every((x) => x === 0));
    });
  });

  itNoLeak('fromFd adopts an fd (closing it on close) and leaves a refused fd open', () => {
    const p = image(8192, (i) => (i * 3) & 0xff);
    const fd = native().open(p, O_RDWR);
    const f = BlockFile.fromFd(fd, false);
    assert.equal(f.fd, fd);
    assert.equal(f.sizeBytes, 8192);
    const b = new Uint8Array(4);
    f.read(b, 4096);
    assert.deepEqual([...b], [0, 3, 6, 9]);
    f.close();
    assert.throws(() => readFileSync(`/proc/self/fdinfo/${fd}`), 'closed with the BlockFile');
    f.close(); // a second close is harmless

    const bad = native().open(image(100), O_RDWR);
    try {
      expectBlockError(() => BlockFile.fromFd(bad, true), 'ERR_BLOCK_FILE_SIZE');
      readFileSync(`/proc/self/fdinfo/${bad}`); // still open
    } finally {
      native().close(bad);
    }
  });

  it('sizes a block device with BLKGETSIZE64 (a loop device)', (t) => {
    const p = image(2 * MIB, (i) => (i >> 9) & 0xff);
    let loop: string;
    try {
      loop = execFileSync('losetup', ['--find', '--show', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (e) {
      t.skip(`losetup cannot attach a loop device here: ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    try {
      withFile(loop, false, (f) => {
        assert.equal(f.sizeBytes, 2 * MIB);
        const b = new Uint8Array(2);
        f.read(b, 3 * 512 - 1);
        assert.deepEqual([...b], [2, 3]);
        f.write(new Uint8Array(512).fill(0x77), 512);
        f.flush();
        f.discard(MIB, 512);
      });
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
    const bytes = readFileSync(p);
    assert.ok(bytes.subarray(512, 1024).every((x) => x === 0x77));
    assert.ok(bytes.subarray(MIB, MIB + 512).every((x) => x === 0));
  });
});

type Op =
  | { kind: 'write'; offset: number; data: Uint8Array }
  | { kind: 'discard'; offset: number; length: number }
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'flush' }
  | { kind: 'read'; offset: number; length: number };

const SIZE = 64 * 1024;
const within = fc.integer({ min: 0, max: SIZE - 1 }).chain((offset) =>
  fc.integer({ min: 0, max: Math.min(SIZE - offset, 8192) }).map((length) => ({ offset, length })));
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: within.chain(({ offset, length }) => fc.uint8Array({ minLength: length, maxLength: length }).map((data): Op => ({ kind: 'write', offset, data }))) },
  { weight: 1, arbitrary: within.map(({ offset, length }): Op => ({ kind: 'discard', offset, length })) },
  { weight: 1, arbitrary: within.map(({ offset, length }): Op => ({ kind: 'zero', offset, length })) },
  { weight: 1, arbitrary: fc.constant<Op>({ kind: 'flush' }) },
  // Reads may run past the end: that part must be zeros.
  { weight: 3, arbitrary: fc.record({ offset: fc.integer({ min: 0, max: SIZE + 4096 }), length: fc.integer({ min: 0, max: 8192 }) }).map((r): Op => ({ kind: 'read', ...r })) },
);

describe('BlockFile: property', () => {
  itNoLeak('random writes, discards and zeroing then reads match a model buffer', () => {
    fc.assert(fc.property(fc.array(arbOp, { maxLength: 40 }), fc.uint8Array({ minLength: SIZE, maxLength: SIZE }), (ops, initial) => {
      const p = path.join(dir, `prop-${counter++}.img`);
      writeFileSync(p, initial);
      const model = new Uint8Array(SIZE + 4096 + 8192); // zeros past SIZE
      model.set(initial);
      try {
        withFile(p, false, (f) => {
          for (const op of ops) {
            if (op.kind === 'write') { f.write(op.data, op.offset); model.set(op.data, op.offset); }
            else if (op.kind === 'discard') { f.discard(op.offset, op.length); model.fill(0, op.offset, op.offset + op.length); }
            else if (op.kind === 'zero') { f.writeZeroes(op.offset, op.length); model.fill(0, op.offset, op.offset + op.length); }
            else if (op.kind === 'flush') f.flush();
            else {
              const b = new Uint8Array(op.length).fill(0xcd);
              f.read(b, op.offset);
              assert.deepEqual(b, model.subarray(op.offset, op.offset + op.length));
            }
          }
          const all = new Uint8Array(SIZE);
          f.read(all, 0);
          assert.deepEqual(all, model.subarray(0, SIZE));
        });
        assert.equal(statSync(p).size, SIZE, 'the file never grows');
      } finally {
        rmSync(p, { force: true });
      }
    }), { numRuns: 60 });
  });
});
