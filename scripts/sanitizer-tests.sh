#!/usr/bin/env bash
# The sanitizer stage of CI: builds the runtime, its unit tests and the fuzz
# targets with ASan + UBSan into $QWEN_SANITIZE_BUILD_DIR (default
# build-sanitize/; no MLIR, so it builds in a few minutes), runs the unit
# tests, replays the fuzz regression corpora, and fuzzes each target for
# $QWEN_FUZZ_SECONDS (default 5) seconds.
#
# The whole lit suite under sanitizers (about 23 minutes of tests on 2 cores,
# plus a sanitized build of the compiler) is a separate, documented command:
#   QWEN_BUILD_DIR=build-asan QWEN_CMAKE_ARGS=-DQWEN_SANITIZE=ON ./scripts/build.sh
#   ASAN_OPTIONS=detect_leaks=0 /usr/lib/llvm-22/bin/lit -sv build-asan/test
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export QWEN_SANITIZE_BUILD_DIR="${QWEN_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
start=$(date +%s)
status=0
"$ROOT/scripts/fuzz.sh" build qwen-runtime-tests qwen-fake-kernels qwen-server-tests || exit 1
echo "sanitizer build: $(( $(date +%s) - start )) s"
(cd "$ROOT" && "$QWEN_SANITIZE_BUILD_DIR/bin/qwen-runtime-tests" --gtest_brief=1) || status=1
# The server's request parsing and response assembly take untrusted requests.
(cd "$ROOT" && "$QWEN_SANITIZE_BUILD_DIR/bin/qwen-server-tests" --gtest_brief=1) || status=1
"$ROOT/scripts/fuzz.sh" replay || status=1
"$ROOT/scripts/fuzz.sh" run "${QWEN_FUZZ_SECONDS:-5}" || status=1
echo "sanitizer stage: $(( $(date +%s) - start )) s, $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
