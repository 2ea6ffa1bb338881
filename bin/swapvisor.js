#!/usr/bin/env node
// The swapvisor command. The TypeScript build lives in dist/; see README.md for set-up.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('swapvisor: error: not built yet; run `npm run setup` from the repository first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
