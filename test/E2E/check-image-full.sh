#!/usr/bin/env bash
# One image_full case (scripts/gen_image_full_reference.py): the tiny
# Qwen3.5 checkpoint of test/data/reference/CASE widened to the demo
# tokenizer, compiled with its vision program (the default), and run on the
# reference's prompts and real image files through
# `qwen-run logits --prompt TEXT --image PATH... --steps 4`: the tower, the
# <|image_pad|> expansion, MRoPE and the language model against HF's whole
# model fed its own processor's pixel_values.
#   check-image-full.sh CASE WORK_DIR
set -euo pipefail
case=$1; work=$2
src=$(dirname "$0")/../..
data=$src/test/data
ref=$data/image_full/$case/reference.safetensors
rm -rf "$work" && mkdir -p "$work/ck"
python3 -c "import json, sys; c = json.load(open(sys.argv[1])); c['text_config']['vocab_size'] = 151936; c.update(image_token_id=151655, vision_start_token_id=151652, vision_end_token_id=151653); json.dump(c, open(sys.argv[2], 'w'))" "$data/reference/$case/config.json" "$work/ck/config.json"
python3 "$src/test/E2E/widen_vocab.py" "$data/reference/$case" "$work/ck" 151936
cp "$src/models/checkpoints/qwen3-demo/tokenizer.json" "$src/models/checkpoints/qwen3-demo/tokenizer_config.json" \
  "$data/image_full/$case/preprocessor_config.json" "$work/ck/"
qwen-compile "$work/ck" -o "$work/model.qwenc"
pad='<|vision_start|><|image_pad|><|vision_end|>'
qwen-run logits "$work/model.qwenc" --prompt "Describe $pad in one word." \
  --image "$data/vision/real_coffee_420.jpg" --steps 4 -o "$work/p0.safetensors"
python3 "$src/test/E2E/check_image_full.py" "$work/p0.safetensors" "$ref" p0.
qwen-run logits "$work/model.qwenc" --prompt "Is $pad like $pad? Say why." \
  --image "$data/vision/real_chelsea_tall_422.jpg" --image "$data/vision/photo_422.jpg" --steps 4 \
  -o "$work/p1.safetensors"
python3 "$src/test/E2E/check_image_full.py" "$work/p1.safetensors" "$ref" p1.
