// The swapvisor command line: dispatches subcommands and turns every error into one clear line.

import { describeError } from './errors.js';
import { RUN_USAGE, runCommand } from './run.js';

const USAGE = `usage: swapvisor <command> [options]

commands:
  run       boot one VM in the foreground, console on stdout

${RUN_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`swapvisor: error: unknown command "${command}"\n${USAGE}\n`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`swapvisor: error: ${describeError(e)}\n`);
    return 2;
  }
}
