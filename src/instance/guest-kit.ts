// Finds the guest kit's built ELFs (guest/build/<name>.elf in the package).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './package-info.js';

export const GUEST_KIT = ['heartbeat', 'memcheck', 'timer', 'smp', 'blkcheck', 'netecho', 'vconecho', 'rngcheck'] as const;
export type GuestKitName = (typeof GUEST_KIT)[number];

export class GuestKitError extends Error {
  readonly code = 'ERR_GUEST_KIT';
}

export function guestKitPath(name: string): string {
  if (!(GUEST_KIT as readonly string[]).includes(name)) {
    throw new GuestKitError(`unknown guest "${name}": choose one of ${GUEST_KIT.join(', ')}`);
  }
  const file = path.join(packageRoot(), 'guest', 'build', `${name}.elf`);
  if (!existsSync(file)) throw new GuestKitError(`guest "${name}" is not built (${file}): run \`npm run setup\` first`);
  return file;
}
