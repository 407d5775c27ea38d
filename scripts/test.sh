#!/usr/bin/env bash
# Runs every test: the lit suite (dialects, passes, pipeline, tools and the
# end-to-end checks against HuggingFace references), then the unit tests.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${QWEN_BUILD_DIR:-$ROOT/build}"
status=0
/usr/lib/llvm-22/bin/lit -sv "$BUILD/test" || status=1
(cd "$BUILD" && ctest --output-on-failure -E '^lit$') || status=1
exit $status
