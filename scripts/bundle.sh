#!/usr/bin/env bash
# Bundles the compiled CLI into CommonJS files: dist/swapvisor.cjs (every command) and
# dist/swapvisor-run.cjs (`swapvisor run` only, without the daemon's libraries). Loading ~100 ES
# modules one by one costs ~15 ms at every start, and an ES module entry point ~4 ms more.
# import.meta.url (used to find the addon and the guest kit) becomes the bundle's own file URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle() {
  npx --no-install esbuild "$1" --bundle --platform=node --format=cjs --target=node20 \
    --define:import.meta.url=__swapvisorBundleUrl \
    --banner:js="const __swapvisorBundleUrl = require('node:url').pathToFileURL(__filename).href;" \
    --outfile="$2" --log-level=warning
}
bundle dist/src/cli/main.js dist/swapvisor.cjs
bundle dist/src/cli/run-main.js dist/swapvisor-run.cjs
