#!/usr/bin/env bash
# Sets up swapvisor on a fresh Debian 12 machine (root, Node 20): Debian packages, npm packages,
# the native addon, the TypeScript build and the guest kit. Safe to run again; it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: a C toolchain for the addon and the guest kit, xz for kernel images.
missing=()
command -v gcc >/dev/null || missing+=(build-essential)
command -v make >/dev/null || missing+=(make)
command -v python3 >/dev/null || missing+=(python3)
command -v xz >/dev/null || missing+=(xz-utils)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]}; run this as root or install them"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, pinned by package-lock.json.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The native addon (node-gyp builds against this Node's headers).
addon=native/build/Release/swapvisor_native.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" 2>/dev/null)" ]; then
  log "building the native addon"
  npx --no-install node-gyp rebuild --directory native --loglevel=error >/dev/null
fi

log "compiling TypeScript"
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.pure.json
bash scripts/bundle.sh

log "building the guest kit"
make -s -C guest
