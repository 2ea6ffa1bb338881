#!/usr/bin/env bash
# Fetches Debian's own kernel (the linux-image-amd64 package, without installing it) and extracts
# its uncompressed vmlinux, which boots through its PVH entry note. Prints the vmlinux path.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/debian-kernel
out="$dir/vmlinux"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -q >/dev/null
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
echo "fetch-debian-kernel: downloading $pkg" >&2
# A stale package list names a version the mirror no longer has: refresh once and retry.
(cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
  apt-get update -q >/dev/null
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1)
}
dpkg-deb -x "$work"/linux-image-*.deb "$work/x"
vmlinuz=$(ls "$work"/x/boot/vmlinuz-* | head -n 1)

# The bzImage's setup header says where the compressed payload is: setup_sects at 0x1f1,
# payload_offset and payload_length (u32) at 0x248 and 0x24c, relative to the protected-mode code.
python3 - "$vmlinuz" "$work/payload" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
setup_sects = b[0x1f1] or 4
offset, length = struct.unpack_from('<II', b, 0x248)
start = (setup_sects + 1) * 512 + offset
open(sys.argv[2], 'wb').write(b[start:start + length])
PY
case "$(head -c 6 "$work/payload" | od -An -tx1 | tr -d ' ')" in
  fd377a585a00) xz -dcq --single-stream "$work/payload" > "$work/vmlinux" ;;
  1f8b*) gzip -dc "$work/payload" > "$work/vmlinux" 2>/dev/null || true ;;
  28b52ffd*) zstd -dcq "$work/payload" > "$work/vmlinux" ;;
  *) echo "fetch-debian-kernel: unknown compression in $vmlinuz" >&2; exit 1 ;;
esac
[ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || { echo "fetch-debian-kernel: extraction failed" >&2; exit 1; }
mv "$work/vmlinux" "$out"
echo "$out"
