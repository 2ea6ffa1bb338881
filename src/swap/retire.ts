// Phase 5 of a swap, retire: instance A hands B the public API socket and the state-dir lock (both
// as fds, so clients never see the socket go away), B confirms, and A goes. B then grows to all
// the CPUs and the whole budget. From the outside the instance's version changed and nothing else.

import type { HandoverChannel } from './channel.js';
import type { SwapJournal } from './journal.js';
import { MessageType } from './protocol.js';
import { SwapError } from './swap-error.js';

export const RETIRE_TIMEOUT_MS = 15_000;

export async function retireA(channel: HandoverChannel, journal: SwapJournal, handOff: {
  apiListenFd: number; lockFd: number; cpus: readonly number[]; budgetMib: number; report: unknown;
}): Promise<void> {
  await journal.write('retire.sent');
  channel.send(MessageType.Retire, { cpus: [...handOff.cpus], budgetMib: handOff.budgetMib, report: handOff.report }, { fds: [handOff.apiListenFd, handOff.lockFd] });
  try {
    await channel.waitFor('RETIRED', (m) => m.type === MessageType.Retired, RETIRE_TIMEOUT_MS);
  } catch (e) {
    throw new SwapError('ERR_SWAP_RETIRE', `the new instance did not take over the API: ${(e as Error).message}`, { cause: e });
  }
  await journal.write('retired');
}
