// Writes test/golden/vm-state-v2.bin: the same synthetic VM state as vm-state-v1.bin, in format 2
// (binary sections; vCPU sections v2 with the MSRs as one blob). Run it only to create the file for
// format 2; never to refresh it (see README.md). vm-state.test.ts decodes it.
//
//   npx tsc -p tsconfig.json && node dist/test/golden/generate-vm-state-v2.js

import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type VmStateIdentity, encodeVmState } from '../../src/state/vm-state.js';
import { goldenVmStateV1 } from './generate-vm-state-v1.js';

export const GOLDEN_VM_STATE_V2_ID: VmStateIdentity = { name: 'golden-v2', memMib: 256 };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'golden', 'vm-state-v2.bin');
  if (existsSync(out)) {
    process.stderr.write(`${out} exists: golden files of a released format are never regenerated; add a new one instead\n`);
    process.exit(1);
  }
  writeFileSync(out, encodeVmState(GOLDEN_VM_STATE_V2_ID, goldenVmStateV1(), 2));
  process.stdout.write(`wrote ${out}\n`);
}
