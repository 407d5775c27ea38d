#!/usr/bin/env bash
# Everything a GPU check needs, in one device call (the device machine has no
# compiler: bench/gpu/bundle.sh prepares gpu-bundle/ here first):
#   run(command="bash bench/gpu/device-run.sh [all|tests|bench|launches]", carry=["gpu-bundle"])
# 1. checks the carried build (qwen-run info on the GPU),
# 2. tests: the demo recites word for word; the HF reference cases
#    (bench/gpu/reference-cases.txt) through test/E2E/check-reference.sh;
#    the tensor-core attention tiles (--gpu-attention=mma) on a Qwen3 and a
#    Qwen3.5 case; Qwen3.5 state slots and ragged batches (qwen-check-state); top-k
#    sampling on the device draws the tokens host sampling draws,
# 3. bench: the measured ceilings (floors.py), qwen-run bench on Qwen3-0.6B and
#    Qwen3-8B with seeded random weights (decode at batch 1/8/32/128, prefill
#    512/4096), HF transformers on the same configs; the same models compiled
#    with --gpu-gemv=generated (NAME-gemv: the generated decode GEMV instead
#    of cuBLASLt for <= 8 rows) at decode batch 1/8/32; Qwen3-8B with FP8
#    weights (qwen3-8b-fp8, when the bundle has it) at decode batch 1/8/32
#    and prefill 512/4096, against the same floors, next to the bf16 rows;
#    prefill 512/4096 of the same configs with the attention tiles on tensor
#    cores (NAME-mma artifacts: qwen-compile --gpu-attention=mma);
#    the vision tower (Engine::encodeImages, qwen-vision-embed) at
#    Qwen3.5-0.8B-like and 9B-like sizes on one image (912 patches) and a
#    batch of four, random bf16 weights (when the bundle has them),
# then prints the test summary and the table last. Full logs under $OUT.
# QWEN_GPU_BENCH_MODELS overrides the benchmarked artifacts (names in
# gpu-bundle/artifacts); QWEN_GPU_SKIP_HF=1 skips the HF peer.
# The device call returns at most 8 files: logs are written to a work folder
# and come back as OUT/logs.tgz, beside summary.txt and the bench JSON lines.
# Each step runs under QWEN_GPU_STEP_TIMEOUT seconds (default 300), and steps
# that would start after QWEN_GPU_DEADLINE seconds (default 520) are skipped,
# so that the summary always comes back inside the call's 10 minutes.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=$root/gpu-bundle
ret=${OUT:-/tmp/qwen-gpu-out}
out=$(mktemp -d /tmp/qwen-gpu-logs.XXXX)
mode=${1:-all}
step_timeout=${QWEN_GPU_STEP_TIMEOUT:-300}
deadline=${QWEN_GPU_DEADLINE:-520}
mkdir -p "$ret"
export PATH=$bundle/bin:$PATH LD_LIBRARY_PATH=$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cd "$root"
summary=()
record() { # record NAME COMMAND...: runs it with its output in OUT/NAME.log
  local name=$1; shift
  local start=$SECONDS
  if [ "$SECONDS" -ge "$deadline" ]; then
    summary+=("SKIP $name (past the ${deadline} s deadline)")
    return
  fi
  # bash -c runs the exported functions below under timeout as well.
  if timeout "$step_timeout" bash -c '"$@"' _ "$@" > "$out/$name.log" 2>&1; then
    summary+=("PASS $name ($((SECONDS - start)) s)")
  else
    summary+=("FAIL $name ($((SECONDS - start)) s): see $name.log")
    tail -5 "$out/$name.log"
  fi
}

demo_recites() {
  for k in 0 1 2; do
    prompt=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][$k]['prompt'])" \
      test/data/demo/expected.json)
    qwen-run generate "$bundle/artifacts/demo.qwenc" "$prompt" --max-new-tokens 200 \
      --checkpoint models/checkpoints/qwen3-demo > "$out/demo-$k.txt" || return 1
    python3 test/E2E/compare_text.py test/data/demo/expected.json $k "$out/demo-$k.txt" || return 1
  done
}

reference_case() { # CASE MODE [ABS COS]
  local case=$1; shift
  QWEN_ARTIFACT=$bundle/artifacts/$case.qwenc bash test/E2E/check-reference.sh \
    "test/data/reference/$case" "$out/work-$case" "$@" > "$out/reference-$case.txt" || return 1
  ! grep -q FAIL "$out/reference-$case.txt"
}

reference_mma() { # CASE MODE [ABS COS]: the CASE-mma artifact (--gpu-attention=mma)
  local case=$1; shift
  # Decode tokens walk in f32, prefill tiles round q and p to bf16: the
  # prefill+decode vs one forward check is held to 0.1 (test/CUDA/reference-attention-mma.test).
  QWEN_ARTIFACT=$bundle/artifacts/$case-mma.qwenc QWEN_FULL_FORWARD_MAX_ABS=0.1 bash test/E2E/check-reference.sh \
    "test/data/reference/$case" "$out/work-$case-mma" "$@" > "$out/reference-$case-mma.txt" || return 1
  ! grep -q FAIL "$out/reference-$case-mma.txt"
}

device_sampling() { # top-k candidates on the device draw the host's tokens
  local flags=(--max-new-tokens 30 --temperature 4 --top-k 50 --top-p 0.9 --seed 11
               --checkpoint models/checkpoints/qwen3-demo)
  qwen-run generate "$bundle/artifacts/demo.qwenc" "Shall I compare thee" "${flags[@]}" > "$out/sample-device.txt" &&
    qwen-run generate "$bundle/artifacts/demo.qwenc" "Shall I compare thee" "${flags[@]}" --cuda-host-sampling \
      > "$out/sample-host.txt" && diff "$out/sample-device.txt" "$out/sample-host.txt"
}

gemv_reference() { # the bf16 case compiled with --gpu-gemv=generated
  local case=bf16_tied_gqa2_theta1e6
  [ -d "$bundle/artifacts/$case-gemv.qwenc" ] || return 0
  QWEN_ARTIFACT=$bundle/artifacts/$case-gemv.qwenc bash test/E2E/check-reference.sh \
    "test/data/reference/$case" "$out/work-$case-gemv" half > "$out/reference-$case-gemv.txt" || return 1
  ! grep -q FAIL "$out/reference-$case-gemv.txt"
}

state_slots() {
  qwen-check-state "$bundle/artifacts/qwen35_f32_untied_nv_2nk.qwenc" --max-abs 1e-4 \
    --checkpoint test/data/reference/qwen35_f32_untied_nv_2nk
}

vision_tower() { # NAME: the vision program's time, weights bound beforehand
  local name=$1 dir=$out/work-$1 image=test/data/vision/real_coffee_420.jpg
  mkdir -p "$dir" && cp "$bundle/vision/$name"/*.json "$dir/" &&
    python3 bench/gpu/vision_weights.py "$dir" || return 1
  for images in 1 4; do
    for repeat in 1 2 3; do
      qwen-vision-embed "$bundle/artifacts/$name.qwenc" "$dir" "$dir/out.safetensors" \
        $(for _ in $(seq "$images"); do echo "$image"; done) > "$dir/run.txt" 2> "$dir/time.txt" || return 1
      # {"vision": NAME, "images": N, "patches": P, "ms": T}
      python3 - "$name" "$dir/run.txt" "$dir/time.txt" <<'PY' >> "$out/bench-vision.jsonl" || return 1
import json, re, sys
run, time = open(sys.argv[2]).read(), open(sys.argv[3]).read()
n, p = re.search(r"(\d+) images, (\d+) patches", run).groups()
ms = re.search(r"vision program: ([\d.]+) ms", time).group(1)
print(json.dumps({"vision": sys.argv[1], "images": int(n), "patches": int(p), "ms": float(ms)}))
PY
    done
  done
  rm -f "$dir/model.safetensors"
}

export bundle out
export -f demo_recites reference_case reference_mma device_sampling state_slots vision_tower gemv_reference

if [ ! -x "$bundle/bin/qwen-run" ]; then
  echo "no gpu-bundle/: run bench/gpu/bundle.sh here and carry gpu-bundle" >&2
  exit 2
fi
echo "bundle of commit $(cat "$bundle/commit" 2>/dev/null || echo '?')" | tee "$out/summary.txt"
nvidia-smi -L > "$out/nvidia-smi.txt" 2>&1 || true
record info qwen-run info "$bundle/artifacts/demo.qwenc" --checkpoint models/checkpoints/qwen3-demo

if [ "$mode" = all ] || [ "$mode" = tests ]; then
  record demo-recites demo_recites
  while read -r case args; do
    record "reference-$case" reference_case "$case" $args
  done < bench/gpu/reference-cases.txt
  if [ -d "$bundle/artifacts/bf16_tied_gqa2_theta1e6-mma.qwenc" ]; then
    record reference-bf16_tied_gqa2_theta1e6-mma reference_mma bf16_tied_gqa2_theta1e6 half
    record reference-qwen35_bf16_mixed-mma reference_mma qwen35_bf16_mixed half 0.5 0.98
  fi
  record reference-gemv gemv_reference
  record state-slots state_slots
  record device-sampling device_sampling
fi

if [ "$mode" = all ] || [ "$mode" = bench ]; then
  record floors sh -c "python3 bench/gpu/floors.py > '$out/floors.json'"
  for name in ${QWEN_GPU_BENCH_MODELS:-qwen3-0.6b qwen3-8b}; do
    artifact=$bundle/artifacts/$name.qwenc
    record "bench-$name-decode" sh -c "qwen-run bench '$artifact' --random-weights --batch 1,8,32,128 \
      --prompt-len 512 --gen 64 | grep '^{' >> '$out/bench-$name.jsonl'"
    record "bench-$name-prefill" sh -c "qwen-run bench '$artifact' --random-weights --batch 1 \
      --prompt-len 512,4096 --gen 0 --max-batch-tokens 4096 | grep '^{' >> '$out/bench-$name.jsonl'"
    # Prefill with the attention tiles on tensor cores (--gpu-attention=mma),
    # next to the default's rows above (table.py: NAME-mma).
    if [ -d "$bundle/artifacts/$name-mma.qwenc" ]; then
      record "bench-$name-mma-prefill" sh -c "qwen-run bench '$bundle/artifacts/$name-mma.qwenc' --random-weights \
        --batch 1 --prompt-len 512,4096 --gen 0 --max-batch-tokens 4096 | grep '^{' >> '$out/bench-$name-mma.jsonl'"
    fi
    # Long-context decode (split-K matters most), then the choices the
    # default makes: no context split, the prefill kernel decoding, and
    # launches without programmatic dependent launch.
    record "bench-$name-decode-long" sh -c "qwen-run bench '$artifact' --random-weights --batch 1,8 \
      --prompt-len 4096 --gen 32 --max-batch-tokens 4096 | grep '^{' >> '$out/bench-$name.jsonl'"
    record "bench-$name-decode-variants" sh -c "qwen-run bench '$artifact' --random-weights --batch 1,8 \
      --prompt-len 512,4096 --gen 32 --max-batch-tokens 4096 --cuda-decode-splits=1 | grep '^{' >> '$out/bench-$name.jsonl' &&
      qwen-run bench '$artifact' --random-weights --batch 1,32 --prompt-len 512 --gen 32 \
      --cuda-decode-kernels=never | grep '^{' >> '$out/bench-$name.jsonl' &&
      qwen-run bench '$artifact' --random-weights --batch 1,8,32 --prompt-len 512 --gen 64 \
      --no-cuda-pdl | grep '^{' >> '$out/bench-$name.jsonl'"
    # The generated decode GEMV (--gpu-gemv=generated, issue 16) right
    # after the default on the same card: decode batch 1 and 8 (the GEMV's
    # rows), then 32 (past its 8 rows: cuBLASLt again, so equal to the
    # default), as rows NAME-gemv of the table.
    if [ -f "$bundle/artifacts/$name-gemv.qwenc/manifest.json" ]; then
      record "bench-$name-gemv-decode" sh -c "qwen-run bench '$bundle/artifacts/$name-gemv.qwenc' --random-weights \
        --batch 1,8,32 --prompt-len 512 --gen 64 | grep '^{' >> '$out/bench-$name-gemv.jsonl'"
    fi
    if [ "$name" = qwen3-8b ] && [ -f "$bundle/artifacts/qwen3-8b-fp8.qwenc" ]; then
      # FP8 right after bf16 on the same card: decode reads half the weight
      # bytes (bound in table.py from the artifact's weight bytes).
      fp8=$bundle/artifacts/qwen3-8b-fp8.qwenc
      record "bench-qwen3-8b-fp8-decode" sh -c "qwen-run bench '$fp8' --random-weights --batch 1,8,32 \
        --prompt-len 512 --gen 64 | grep '^{' >> '$out/bench-qwen3-8b-fp8.jsonl'"
      record "bench-qwen3-8b-fp8-prefill" sh -c "qwen-run bench '$fp8' --random-weights --batch 1 \
        --prompt-len 512,4096 --gen 0 --max-batch-tokens 4096 | grep '^{' >> '$out/bench-qwen3-8b-fp8.jsonl'"
    fi
    if [ "${QWEN_GPU_SKIP_HF:-0}" != 1 ] && [ -f "bench/configs/$name.json" ]; then
      record "hf-$name-decode" sh -c "python3 bench/hf_cpu_bench.py --device cuda --config bench/configs/$name.json \
        --batch 1,8,32,128 --prompt-len 512 --gen 64 --repeat 2 >> '$out/hf-$name.jsonl'"
      record "hf-$name-prefill" sh -c "python3 bench/hf_cpu_bench.py --device cuda --config bench/configs/$name.json \
        --batch 1 --prompt-len 512,4096 --gen 0 --repeat 2 >> '$out/hf-$name.jsonl'"
    fi
  done
  for name in vision-0.8b vision-9b; do
    if [ -f "$bundle/artifacts/$name.qwenc/manifest.json" ]; then
      record "bench-$name" vision_tower "$name"
    fi
  done
fi

# Kernels per step and decode before / after a fusion change (issue 16: the
# query chain joined to the KV write): NAME-base.qwenc is the same model
# compiled by the baseline compiler, copied into the bundle by hand, e.g.
#   /work/base11/bin/qwen-compile /work/peer/qwen3-0.6b --target=cuda \
#     -o gpu-bundle/artifacts/qwen3-0.6b-base.qwenc
# `qwen-run info` prints each artifact's kernel calls per step; decode at
# batch 1 and 8 alternates the two artifacts over three rounds on one card
# (launches-ab.jsonl, rows tagged by the artifact path).
launches_ab() { # NAME
  local name=$1 new=$bundle/artifacts/$1.qwenc base=$bundle/artifacts/$1-base.qwenc
  for a in "$base" "$new"; do
    echo "$a: $(qwen-run info "$a" 2>&1 | grep -o 'program *[0-9]* kernel calls')"
  done
  for round in 1 2 3; do
    for a in "$base" "$new"; do
      qwen-run bench "$a" --random-weights --batch 1,8 --prompt-len 512 --gen 64 | grep '^{' \
        >> "$out/launches-ab.jsonl" || return 1
    done
  done
}
export -f launches_ab
if [ "$mode" = all ] || [ "$mode" = bench ] || [ "$mode" = launches ]; then
  for name in ${QWEN_GPU_BENCH_MODELS:-qwen3-0.6b}; do
    if [ -d "$bundle/artifacts/$name-base.qwenc" ]; then
      record "launches-$name" launches_ab "$name"
    fi
  done
fi

printf '%s\n' "${summary[@]}" | tee -a "$out/summary.txt"
if [ -f "$out/floors.json" ] && ls "$out"/bench-*.jsonl > /dev/null 2>&1; then
  python3 bench/gpu/table.py "$out" | tee "$out/table.txt"
fi
tar czf "$ret/logs.tgz" -C "$out" --exclude="./work-*" .
cp "$out/summary.txt" "$ret/"
cat "$out"/*.jsonl "$out/floors.json" > "$ret/bench.jsonl" 2>/dev/null || true
cat "$out/bench-vision.jsonl" 2>/dev/null || true
! printf '%s\n' "${summary[@]}" | grep -q '^FAIL'
