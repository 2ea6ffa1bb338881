// Entry point of the small bundle for `swapvisor run` (dist/swapvisor-run.cjs): booting one VM in
// the foreground must not pay for loading the daemon's API, logging and validation libraries.

import { describeError } from './errors.js';
import { runCommand } from './run.js';

export async function main(argv: string[]): Promise<number> {
  try {
    return await runCommand(argv.slice(1));
  } catch (e) {
    process.stderr.write(`swapvisor: error: ${describeError(e)}\n`);
    return 2;
  }
}
