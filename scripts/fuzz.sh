#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ under ASan + UBSan.
#
#   fuzz.sh build                     configure and build them into $QWEN_SANITIZE_BUILD_DIR
#                                     (default build-sanitize/, shared with scripts/sanitizer-tests.sh)
#   fuzz.sh replay [TARGET...]        run each target once over its regression corpus
#                                     fuzz/corpus/TARGET (what CI does)
#   fuzz.sh run SECONDS [TARGET...]   fuzz each target for SECONDS, starting from its corpus
#                                     (CI: a few seconds; a developer's run: 3600 and more)
#
# TARGET is a file name of fuzz/ without .cpp (default: all). New inputs that
# raise coverage go to BUILD/fuzz-corpus/TARGET, crashes to
# BUILD/fuzz-findings/TARGET; once a finding is fixed, copy its input into
# fuzz/corpus/TARGET so every CI run replays it. The server's request parser
# joins as fuzz/serve_request.cpp (with a corpus of requests) once
# `qwen-run serve` exists; nothing here needs to change for it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${QWEN_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
JOBS="${QWEN_JOBS:-$(nproc)}"
# Every fuzz/*.cpp is a target (a new one needs a qwen_add_fuzzer line in
# fuzz/CMakeLists.txt and a seed corpus in fuzz/corpus/NAME).
ALL_TARGETS="$(cd "$ROOT/fuzz" && ls *.cpp | sed 's/\.cpp$//' | tr '\n' ' ')"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    # -O1 with line tables: quick to build, readable reports; assertions stay on.
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize \
      -DCMAKE_C_FLAGS_SANITIZE="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -gline-tables-only" \
      -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
      -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=lld \
      -DQWEN_BUILD_COMPILER=OFF -DQWEN_SANITIZE=ON -DQWEN_BUILD_FUZZERS=ON >/dev/null
  fi
  ninja -C "$BUILD" -j "$JOBS" qwen-fuzzers "$@"
}

targets() { if [ $# -gt 0 ]; then echo "$@"; else echo "$ALL_TARGETS"; fi; }

binary() {
  local exe="$BUILD/bin/fuzz-$1"
  [ -x "$exe" ] || { echo "fuzz.sh: $exe is not built (run scripts/fuzz.sh build)" >&2; exit 1; }
  echo "$exe"
}

replay() {
  local failed=0 count=0
  for t in $(targets "$@"); do
    local exe; exe="$(binary "$t")"
    local inputs=("$ROOT/fuzz/corpus/$t"/*)
    if "$exe" -runs=0 "${inputs[@]}" >"$BUILD/fuzz-$t.replay.log" 2>&1; then
      echo "PASS: fuzz $t replayed ${#inputs[@]} inputs"
    else
      echo "FAIL: fuzz $t (log: $BUILD/fuzz-$t.replay.log)"; tail -30 "$BUILD/fuzz-$t.replay.log"
      failed=$((failed + 1))
    fi
    count=$((count + 1))
  done
  echo "fuzz replay: $((count - failed)) of $count targets passed"
  [ "$failed" -eq 0 ]
}

run() {
  local seconds="$1"; shift
  local failed=0 count=0
  for t in $(targets "$@"); do
    local exe; exe="$(binary "$t")"
    mkdir -p "$BUILD/fuzz-corpus/$t" "$BUILD/fuzz-findings/$t"
    # The first corpus folder receives new inputs; the committed one is read only.
    if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$BUILD/fuzz-findings/$t/" \
        "$BUILD/fuzz-corpus/$t" "$ROOT/fuzz/corpus/$t" >"$BUILD/fuzz-$t.run.log" 2>&1; then
      echo "PASS: fuzz $t for ${seconds} s: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/fuzz-$t.run.log" | grep -o '[0-9]*$') runs"
    else
      echo "FAIL: fuzz $t (log: $BUILD/fuzz-$t.run.log, input in $BUILD/fuzz-findings/$t)"
      tail -40 "$BUILD/fuzz-$t.run.log"
      failed=$((failed + 1))
    fi
    count=$((count + 1))
  done
  echo "fuzz run: $((count - failed)) of $count targets passed"
  [ "$failed" -eq 0 ]
}

case "${1:-}" in
  build) shift; build "$@" ;;
  replay) shift; replay "$@" ;;
  run) shift; [ $# -ge 1 ] || { echo "usage: fuzz.sh run SECONDS [TARGET...]" >&2; exit 2; }; run "$@" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
