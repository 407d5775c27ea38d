#!/usr/bin/env python3
"""Generate reference encodings for the C++ tokenizer tests.

Encodes a varied corpus with the HuggingFace `tokenizers` library (the
reference implementation) and writes test/data/tokenizer/qwen3_expected.json:
a JSON list of entries

    {"text": str, "ids": [int],              # encode, special tokens parsed
     "ids_no_special": [int],                # encode with special tokens as text
     "decoded": str,                         # decode(ids)
     "decoded_skip_special": str}            # decode(ids, skip_special_tokens)

Run by developers when the corpus or the tokenizer changes, never by CI:

    pip install tokenizers
    python3 scripts/gen_tokenizer_reference.py

The output is committed (test/data/tokenizer/). Its corpus is reused by
scripts/gen_tokenizer_reference_qwen35.py, which writes the reference for a
Qwen3.5-style tokenizer derived from the same tokenizer.json
(test/data/tokenizer/qwen35_style_expected.json).
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TOKENIZER = os.path.join(ROOT, "models", "checkpoints", "qwen3-demo",
                                 "tokenizer.json")
DEFAULT_OUTPUT = os.path.join(ROOT, "test", "data", "tokenizer",
                              "qwen3_expected.json")

CORPUS = [
    # --- trivial
    "",
    " ",
    "a",
    "Hello",
    "Hello, world!",
    # --- English prose
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times, it was the age of "
    "wisdom, it was the age of foolishness, it was the epoch of belief.",
    "Tokenization splits text into subword units; BPE merges frequent byte "
    "pairs. (See Sennrich et al., 2016.)",
    "MIXED case WoRdS and ALLCAPS SENTENCES LIKE THIS ONE.",
    # --- contractions
    "It's John's book, isn't it? They're sure we've done what I'd said.",
    "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D 'S 'T 'Re 'rE 'LL",
    "'s'S't'T're'RE've'm'll'd",
    # --- scripts
    "你好，世界！今天天气很好，我们去公园散步吧。",
    "機械学習は人工知能の一分野です。ひらがな、カタカナ、漢字。",
    "안녕하세요. 한국어 텍스트를 토큰화합니다.",
    "مرحبا بالعالم. هذا نص باللغة العربية.",
    "नमस्ते दुनिया। यह हिंदी में एक वाक्य है।",
    "Привет, мир! Это предложение на русском языке.",
    "Γειά σου Κόσμε! Αυτή είναι μια ελληνική πρόταση.",
    "สวัสดีชาวโลก นี่คือประโยคภาษาไทย",
    "עברית: שלום עולם",
    "Mixed: English, 中文, русский, العربية, 日本語 and ελληνικά in one line.",
    # --- whitespace
    "two  spaces and   three   spaces",
    "    leading spaces",
    "trailing spaces    ",
    "\ttab\tseparated\tvalues\t",
    "line one\nline two\n\nline four\n",
    "\n\n\n",
    "windows\r\nline\r\nendings\r\n",
    " \t \n \t\n  mixed whitespace \n\t ",
    "          ",
    "word\u00a0nbsp\u3000ideographic\u2003em space",
    "nel\u0085next line\u2028line sep\u2029para sep",
    # --- digits and numbers
    "0123456789",
    "Pi is 3.14159265358979323846264338327950288419716939937510.",
    "Phone: +1 (555) 123-4567, year 2024, 1,000,000 and 1e-10.",
    "١٢٣ ٤٥٦ Arabic-Indic digits and ½ ⅓ Ⅻ ²",
    # --- code
    "def fibonacci(n):\n    if n < 2:\n        return n\n"
    "    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "#include <vector>\n\nint main() {\n  std::vector<int> v{1, 2, 3};\n"
    "  for (auto &x : v)\n    x *= 2;\n  return 0;\n}\n",
    "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "<html><body><div class=\"x\">Hi &amp; bye</div></body></html>",
    # --- emoji
    "I love pizza 🍕 and tacos 🌮!",
    "👨‍👩‍👧‍👦 family, 👩🏽‍💻 technologist, 🏳️‍🌈 flag",
    "Flags: 🇺🇸🇯🇵🇩🇪🇫🇷",
    "😀😃😄😁😆😅🤣😂🙂🙃",
    # --- special tokens inline
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    "<think>\n\n</think>\n\nHello!<|im_end|><|endoftext|>",
    "text<|endoftext|>more text<|endoftext|>",
    "<|im_start|><|im_end|><|im_start|>",
    "broken <|im_start and <|im_end |> tokens <|unknown|>",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    # --- combining characters / normalization
    "cafe\u0301 re\u0301sume\u0301 nai\u0308ve",
    "café résumé naïve",
    "A\u030a ohm \u2126 angstrom \u212b hangul \u1100\u1161",
    "e\u0301\u0301 stacked e\u0323\u0302 marks",
    # --- punctuation
    "!!! ??? ... --- *** ### @@@",
    "Wait... what?!?! (Really???) [yes] {no} <maybe>",
    "“Smart quotes” ‘single’ — em dash – en dash … ellipsis",
    "a.b,c;d:e!f?g",
    # --- long inputs
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 8,
    "supercalifragilisticexpialidocious" + "x" * 300,
    "9" * 120,
    "😀" * 30,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("error: needs the HuggingFace tokenizers package "
                 "(pip install tokenizers)")

    tok = Tokenizer.from_file(args.tokenizer)
    entries = []
    for text in CORPUS:
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        ids_no_special = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        entries.append({
            "text": text,
            "ids": ids,
            "ids_no_special": ids_no_special,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })

    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("[\n")
        for i, e in enumerate(entries):
            f.write("  " + json.dumps(e, ensure_ascii=False))
            f.write(",\n" if i + 1 < len(entries) else "\n")
        f.write("]\n")
    print(f"wrote {len(entries)} entries to {args.output}")


if __name__ == "__main__":
    main()
