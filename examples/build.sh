#!/usr/bin/env bash
# Builds the example guests and prints the paths of the .wasm files.
#
#   examples/build.sh            # into $CARGO_TARGET_DIR, default <repo>/target/examples
#
# wagi-hello is a plain wasm32-wasip1 module (WAGI/CGI); worker is a
# wasm32-wasip1 command (`_start`; preview 1 keeps exit codes, which WASI
# 0.2's wasi:cli/exit reduces to ok/err); the others are wasm32-wasip2 components exporting
# wasi:http/incoming-handler. All share one
# target directory so their common dependencies compile once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/examples}"
case "$CARGO_TARGET_DIR" in
  /*) ;;
  *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;;
esac

build() { # NAME TARGET
  local name="$1" target="$2"
  (cd "$here/$name" && cargo build --release --target "$target" >&2)
  local wasm="$CARGO_TARGET_DIR/$target/release/$name.wasm"
  if [[ ! -f "$wasm" ]]; then
    echo "build.sh: expected $wasm was not produced" >&2
    exit 1
  fi
  echo "$wasm"
}

build hello wasm32-wasip2
build echo wasm32-wasip2
build hostile wasm32-wasip2
build raw-echo wasm32-wasip2
build kv-counter wasm32-wasip2
build wasi-foreign wasm32-wasip2
build wagi-hello wasm32-wasip1
build worker wasm32-wasip1
