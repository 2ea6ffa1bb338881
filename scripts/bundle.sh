#!/usr/bin/env bash
# Bundles the compiled CLI into one CommonJS file, dist/swapvisor.cjs. Loading ~60 ES modules one
# by one costs ~15 ms at every start, and an ES module entry point ~4 ms more; the bundle avoids both.
# import.meta.url (used to find the addon and the guest kit) becomes the bundle's own file URL.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install esbuild dist/src/cli/main.js --bundle --platform=node --format=cjs --target=node20 \
  --define:import.meta.url=__swapvisorBundleUrl \
  --banner:js="const __swapvisorBundleUrl = require('node:url').pathToFileURL(__filename).href;" \
  --outfile=dist/swapvisor.cjs --log-level=warning
