#!/usr/bin/env bash
# Compiles the bundled Qwen3 demo checkpoint and lets it recite Sonnet 18.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${QWEN_BUILD_DIR:-$ROOT/build}"
"$BUILD/bin/qwen-compile" "$ROOT/models/checkpoints/qwen3-demo" -o "$BUILD/qwen3-demo.qwenc"
"$BUILD/bin/qwen-run" generate "$BUILD/qwen3-demo.qwenc" "Shall I compare thee" --max-new-tokens 160
