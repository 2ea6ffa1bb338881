// `swapvisor version [--json]`: this build's version and the handover protocol and state formats
// it accepts. A running instance asks a target build this before a swap.

import { parseArgs } from 'node:util';
import { packageVersion } from '../instance/package-info.js';
import { CURRENT_FORMAT_VERSION, MIN_READABLE_FORMAT_VERSION } from '../state/envelope.js';
import { PROTOCOL_WINDOW } from '../swap/protocol.js';

export async function versionCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: { json: { type: 'boolean' } } });
  const info = { version: packageVersion(), protocol: [...PROTOCOL_WINDOW], stateFormat: [MIN_READABLE_FORMAT_VERSION, CURRENT_FORMAT_VERSION] };
  process.stdout.write(values.json ? `${JSON.stringify(info)}\n` : `swapvisor ${info.version} (handover protocol ${info.protocol.join('-')}, state formats ${info.stateFormat.join('-')})\n`);
  return 0;
}
