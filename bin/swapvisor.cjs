#!/usr/bin/env node
// The swapvisor command. It runs the bundled build (dist/swapvisor.cjs: one CommonJS file, which
// Node loads fastest); see README.md for set-up.
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const bundle = path.join(__dirname, '..', 'dist', 'swapvisor.cjs');
if (!fs.existsSync(bundle)) {
  process.stderr.write('swapvisor: error: not built yet; run `npm run setup` from the repository first\n');
  process.exit(2);
}
require(bundle)
  .main(process.argv.slice(2))
  .then((code) => { process.exitCode = code; });
