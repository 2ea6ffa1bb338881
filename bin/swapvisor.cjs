#!/usr/bin/env node
// The swapvisor command. It runs the bundled build: dist/swapvisor-run.cjs for `run` (small, so a
// VM boots fast) and dist/swapvisor.cjs for everything else. See README.md for set-up.
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const name = process.argv[2] === 'run' ? 'swapvisor-run.cjs' : 'swapvisor.cjs';
const bundle = path.join(__dirname, '..', 'dist', name);
if (!fs.existsSync(bundle)) {
  process.stderr.write('swapvisor: error: not built yet; run `npm run setup` from the repository first\n');
  process.exit(2);
}
require(bundle)
  .main(process.argv.slice(2))
  .then((code) => { process.exitCode = code; });
