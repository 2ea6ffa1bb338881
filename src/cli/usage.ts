// The usage text of every command, in one place so the dispatcher can print it without loading them.

export const CONSOLE_USAGE = 'usage: swapvisor console VM [--stream serial|vconsole] [--state-dir DIR]   (detach with Ctrl-])';

export const DAEMON_USAGE = `usage: swapvisor daemon start [--state-dir DIR] [--cpus LIST] [--mem-budget SIZE] [--restart-lost] [--foreground]
       swapvisor daemon stop [--state-dir DIR]
       swapvisor daemon status [--state-dir DIR] [--json]`;

export const HOST_USAGE = 'usage: swapvisor host info [--platform] [--json] [--state-dir DIR]';

export const RUN_USAGE = `usage: swapvisor run (--guest NAME | --kernel FILE [--initrd FILE]) [--mem SIZE] [--vcpus N]
                     [--cmdline TEXT] [--entry auto|long-mode|pvh] [--cpus LIST]
                     [--disk id=ID,path=FILE[,ro][,serial=S]]... [--net id=ID,tap=NAME[,netns=NS][,mac=M]]... [--rng]`;

export const SWAP_USAGE = `usage: swapvisor swap --to DIR [--dry-run] [--concurrency N] [--json] [--state-dir DIR]
                      [--canary VM [--canary-secs N] [--canary-pattern REGEX]]
       swapvisor swap --abort [--state-dir DIR]
       swapvisor swap report [--json] [--html FILE] [--state-dir DIR]`;

export const VM_USAGE = `usage: swapvisor vm create NAME (--guest G | --kernel FILE [--initrd FILE]) [--mem SIZE] [--vcpus N]
                        [--cmdline TEXT] [--entry auto|long-mode|pvh] [--start] [--restart-on-lost]
                        [--disk id=ID,path=FILE[,ro][,serial=S]]... [--net id=ID,tap=NAME[,netns=NS][,mac=M]]...
                        [--vconsole] [--rng]
       swapvisor vm start|pause|resume|stop NAME
       swapvisor vm rm NAME [--force]
       swapvisor vm ls [--json]
       swapvisor vm show NAME [--json]
  every vm command takes --state-dir DIR (default: $SWAPVISOR_STATE_DIR or /var/lib/swapvisor)`;
