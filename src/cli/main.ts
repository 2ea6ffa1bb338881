// The swapvisor command line: dispatches subcommands and turns every error into one clear line.

// Commands are loaded when used: `run` must not pay for the daemon's dependencies at start-up.
import { ApiCallError, DaemonNotRunningError } from './api-client.js';
import { describeError } from './errors.js';
import { CONSOLE_USAGE, DAEMON_USAGE, HOST_USAGE, RUN_USAGE, SWAP_USAGE, VM_USAGE } from './usage.js';

const USAGE = `usage: swapvisor <command> [options]

commands:
  run       boot one VM in the foreground, console on stdout
  daemon    start, stop or query the instance (swapvisord)
  vm        create and manage VMs of the running instance
  console   attach to a VM's console
  host      show the instance's partition and platform record
  swap      replace the running instance with another build, VMs running on
  version   this build's version and the handover formats it accepts

${RUN_USAGE}
${DAEMON_USAGE}
${VM_USAGE}
${CONSOLE_USAGE}
${HOST_USAGE}
${SWAP_USAGE}`;

/** Exit codes: 0 ok, 1 the daemon refused (wrong state, not found, ...), 2 usage or input, 3 no daemon. */
export const EXIT_API_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_NO_DAEMON = 3;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await (await import('./run.js')).runCommand(rest);
      case 'daemon':
        (await import('./accelerators.js')).installAccelerators();
        return await (await import('./daemon-cmd.js')).daemonCommand(rest);
      case 'vm':
        return await (await import('./vm-cmd.js')).vmCommand(rest);
      case 'console':
        return await (await import('./console-cmd.js')).consoleCommand(rest);
      case 'host':
        return await (await import('./host-cmd.js')).hostCommand(rest);
      case 'swap':
        return await (await import('./swap-cmd.js')).swapCommand(rest);
      case 'version':
        return await (await import('./version-cmd.js')).versionCommand(rest);
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
    if (e instanceof DaemonNotRunningError) return EXIT_NO_DAEMON;
    if (e instanceof ApiCallError) return e.status === 400 || e.status === 413 ? EXIT_USAGE : EXIT_API_ERROR;
    return EXIT_USAGE;
  }
}
