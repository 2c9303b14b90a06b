#!/bin/sh
# Build wasm/build/ghash.wasm from wasm/src/ghash.c (npm run build:wasm). Needs clang and wasm-ld
# (Debian: apt-get install -y clang lld). The built file is checked in, so nothing else needs clang.
# Usage: wasm/build.sh [output.wasm]   (default wasm/build/ghash.wasm; also writes <output>.toolchain)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/build/ghash.wasm"}
clang=${CLANG:-clang}
mkdir -p "$(dirname "$out")"
# Fixed memory (2 pages: the io block is 3 x 16 KiB + 48 bytes, plus a 4 KiB stack), no entry
# point, no libc; --strip-all drops names and the producers section so the file is small and the
# bytes depend on the compiler's code generation only.
"$clang" --target=wasm32 -O3 -ffreestanding -nostdlib -fno-builtin \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--strip-all \
  -Wl,-z,stack-size=4096 -Wl,--initial-memory=131072 -Wl,--max-memory=131072 \
  -o "$out" "$here/src/ghash.c"
chmod 644 "$out"
"$clang" --version | head -n 1 > "$out.toolchain"
echo "wasm/build.sh: wrote $out ($(wc -c < "$out") bytes) with $(cat "$out.toolchain")"
