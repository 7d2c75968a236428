#!/bin/bash
# Extracts the uncompressed vmlinux ELF from a bzImage: finds the payload's
# compression magic, decompresses from there and keeps the first result that
# is an ELF file. Usage: extract-vmlinux.sh BZIMAGE OUTPUT
set -eu -o pipefail

[ $# = 2 ] || { echo "usage: $0 BZIMAGE OUTPUT" >&2; exit 2; }
image=$1 output=$2
[ -r "$image" ] || { echo "[images] error: cannot read $image" >&2; exit 1; }

# magic (grep -P escapes) | decompressor reading stdin
formats=(
    '\x28\xb5\x2f\xfd|zstd -dcq'
    '\xfd\x37\x7a\x58\x5a\x00|xz -dcq'
    '\x1f\x8b\x08|gzip -dcq'
    '\x02\x21\x4c\x18|lz4 -dcq'
    '\x5d\x00\x00|xz -dcq --format=lzma'
    'BZh|bzip2 -dcq'
)
for entry in "${formats[@]}"; do
    magic=${entry%%|*} tool=${entry#*|}
    command -v "${tool%% *}" >/dev/null || continue
    for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
        # Trailing bytes after the stream make decompressors complain: ignore
        # their status and judge the output.
        tail -c +"$((offset + 1))" "$image" | $tool > "$output" 2>/dev/null || true
        if [ "$(head -c 4 "$output" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
            exit 0
        fi
    done
done
rm -f "$output"
echo "[images] error: no compressed ELF payload found in $image" >&2
exit 1
