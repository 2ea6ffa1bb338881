// Checks a disk image written by the guest kit's blkcheck directly on the host, against the
// on-disk format in docs/guest-kit.md: every 4 KiB block has its magic, its own index, the seed,
// a payload derived from (seed, pass, index), and a CRC-32 of the rest.

import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';

const BLOCK = 4096;
const M64 = (1n << 64n) - 1n;

function payloadStart(seed: bigint, pass: bigint, index: bigint): bigint {
  let x = (seed ^ ((pass * 0x9e3779b97f4a7c15n) & M64) ^ (((index + 1n) * 0xc2b2ae3d27d4eb4fn) & M64)) & M64;
  x ^= x >> 30n; x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n; x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x === 0n ? 1n : x;
}

export interface ImageCheck {
  blocks: number;
  /** How many blocks carry each pass number. */
  passes: Map<number, number>;
  errors: string[];
}

/** Verifies the first `blocks` blocks of the image. */
export function checkBlkcheckImage(path: string, blocks: number): ImageCheck {
  const img = readFileSync(path);
  const out: ImageCheck = { blocks, passes: new Map(), errors: [] };
  for (let i = 0; i < blocks; i++) {
    const b = img.subarray(i * BLOCK, (i + 1) * BLOCK);
    const v = new DataView(b.buffer, b.byteOffset, BLOCK);
    const fail = (what: string): void => { if (out.errors.length < 10) out.errors.push(`block ${i}: ${what}`); };
    if (b.subarray(0, 8).toString('latin1') !== 'SVBLKCHK') { fail('no magic'); continue; }
    if (v.getBigUint64(8, true) !== BigInt(i)) { fail(`index ${v.getBigUint64(8, true)}`); continue; }
    const pass = v.getBigUint64(16, true);
    const seed = v.getBigUint64(24, true);
    if (BigInt(crc32(b.subarray(0, BLOCK - 8))) !== v.getBigUint64(BLOCK - 8, true)) { fail('bad CRC'); continue; }
    let x = payloadStart(seed, pass, BigInt(i));
    for (let w = 0; w < 507; w++) {
      x ^= (x << 13n) & M64; x ^= x >> 7n; x ^= (x << 17n) & M64;
      if (v.getBigUint64(32 + 8 * w, true) !== x) { fail(`payload word ${w}`); break; }
    }
    out.passes.set(Number(pass), (out.passes.get(Number(pass)) ?? 0) + 1);
  }
  return out;
}
