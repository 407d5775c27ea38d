#!/usr/bin/env python3
"""Generate reference encodings for a Qwen3.5-style tokenizer (C++ tests).

The real Qwen3.5 tokenizer (248,320-entry vocabulary) is not in the repo. What
the runtime must get right about it is what differs from Qwen3, so the test
uses a tokenizer *derived* from the committed Qwen3 tokenizer.json
(models/checkpoints/qwen3-demo/tokenizer.json), with the same vocab, merges,
normalizer (NFC) and decoder, and these changes:

  * the pre-tokenizer Split regex is Qwen3.5's, in which combining marks
    (\\p{M}) join letter runs and never join punctuation runs:
        (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}|
         ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+
    (Qwen3's has \\p{L}+ and [^\\s\\p{L}\\p{N}]+ in those places);
  * the BPE vocab is padded with inert entries "<|qwen35_vocab_pad_ID|>" for
    ids 151643..248043 (no merge produces them, so they never come out of
    encoding), so that
  * the added tokens start at 248044 as in Qwen3.5: the Qwen3 list renumbered
    (<|endoftext|> 248044, <|im_start|> 248045, <|im_end|> 248046,
    <|vision_start|> .. <|video_pad|> 248053..248057, <think> 248068, ...)
    plus <|audio_start|>, <|audio_end|>, <|audio_pad|> (248070..248072).
    HF `tokenizers` ignores the ids written in "added_tokens" when they are
    not contiguous with the model vocab (it renumbers from the vocab size),
    hence the padding instead of a gap.

The recipe is written into the output next to the reference encodings, and
the C++ test (unittests/runtime/tokenizer_test.cpp) rebuilds the same derived
tokenizer.json from the Qwen3 file at run time, so no second 11 MB tokenizer
is committed. Output, test/data/tokenizer/qwen35_style_expected.json:

    {"base_tokenizer": "models/checkpoints/qwen3-demo/tokenizer.json",
     "base_sha256": str, "base_vocab_size": 151643,
     "split_regex": str,                 # Qwen3.5 regex (the derived file's)
     "qwen3_split_regex": str,           # the base file's regex
     "vocab_padding": {"begin": 151643, "end": 248044,
                       "format": "<|qwen35_vocab_pad_{}|>"},
     "added_tokens": [HF added-token objects with their ids],
     "vocab_size": int,                  # ids in the derived tokenizer
     "cases": [
       {"text": str, "ids": [int],       # encode, special tokens parsed
        "ids_no_special": [int],         # encode with special tokens as text
        "decoded": str,                  # decode(ids)
        "decoded_skip_special": str,     # decode(ids, skip_special_tokens)
        "ids_qwen3_regex": [int]}]}      # encode (specials parsed) by the same
                                         # derived tokenizer with Qwen3's regex

The corpus is the Qwen3 corpus of gen_tokenizer_reference.py plus text that
stresses combining marks (stacked and enclosing marks, Devanagari, Thai,
Vietnamese, Hebrew points, Arabic harakat, Indic and SE Asian scripts,
variation selectors in emoji, Zalgo text) and the renumbered special tokens.

Run by developers when the corpus or the base tokenizer changes, never by CI:

    pip install tokenizers
    python3 scripts/gen_tokenizer_reference_qwen35.py

The output is committed (test/data/tokenizer/).
"""

import argparse
import copy
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_tokenizer_reference import CORPUS as QWEN3_CORPUS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_TOKENIZER_REL = "models/checkpoints/qwen3-demo/tokenizer.json"
DEFAULT_OUTPUT = os.path.join(ROOT, "test", "data", "tokenizer",
                              "qwen35_style_expected.json")

QWEN35_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|"
    r" ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

FIRST_ADDED_ID = 248044  # Qwen3.5's <|endoftext|>
PAD_FORMAT = "<|qwen35_vocab_pad_{}|>"
EXTRA_SPECIAL_TOKENS = ["<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"]


def zalgo(text, marks_per_char):
    """Deterministic "Zalgo" text: every letter gets a pile of marks."""
    above = [chr(c) for c in range(0x0300, 0x0315)]
    below = [chr(c) for c in range(0x0316, 0x0334)]
    out, k = [], 0
    for ch in text:
        out.append(ch)
        if ch.isalpha():
            for _ in range(marks_per_char):
                out.append((above if k % 2 == 0 else below)[k % 19])
                k += 7
    return "".join(out)


MARKS_CORPUS = [
    # --- Latin with combining marks (NFC composes some, not all)
    "e\u0301",
    "e\u0301\u0301",
    "cafe\u0301 vs caf\u00e9 vs cafe\u0301\u0327",
    "q\u0307 x\u0323\u0304 m\u0306\u0306 n\u0303\u0303\u0303",
    "\u0301leading mark",
    " \u0301\u0302 marks after a space",
    "word \u0301 lone mark, then !\u0301? after punctuation",
    "digits with marks: 5\u0301 12\u0303 \u0665\u0651",
    "line\n\u0301after newline\r\n\u0302after CRLF",
    "tab\t\u0301mark",
    "it's\u0301 don't\u0308 THEY'RE\u0303",
    "x\u0302 + y\u0303 = z\u20d7, \u2207\u20d7\u00b7F\u20d7 and a\u20dd b\u20de",
    "keycaps: 1\u20e3 #\u20e3 1\ufe0f\u20e3 *\ufe0f\u20e3",
    "IPA: \u02c8f\u0259\u028a.n\u026am t\u0361\u0283 d\u035c\u0292 "
    "n\u0329 \u0261\u02b7",
    # --- Vietnamese (NFD input and precomposed)
    "Tie\u0302\u0301ng Vie\u0323\u0302t co\u0301 nhie\u0302\u0300u da\u0302\u0301u",
    "Tiếng Việt có nhiều dấu: ầ ẩ ẫ ậ ằ ẳ ẵ ặ ờ ở ỡ ợ ừ ử ữ ự",
    "Vi\u1ec7\u0323t with an extra dot",
    # --- Greek polytonic, Cyrillic stress
    "\u03b1\u0313\u0301\u03bd\u03b8\u03c1\u03c9\u0342\u0345\u03c0\u03bf\u03c2 "
    "\u1f00\u03bd\u03ae\u03c1",
    "\u0437\u0430\u0301\u043c\u043e\u043a \u0438 \u0437\u0430\u043c\u043e\u0301"
    "\u043a, \u043c\u043e\u043b\u043e\u043a\u043e\u0301",
    # --- Indic scripts (vowel signs, virama, nukta, anusvara)
    "नमस्ते दुनिया। हिन्दी में संयुक्ताक्षर: क्षत्रिय, ज्ञान, श्रृंगार।",
    "क़लम ख़ुश ज़िंदगी फ़िल्म — nukta क\u093c",
    "বাংলা ভাষা আমার মাতৃভাষা।",
    "தமிழ் மொழி மிகவும் பழமையானது.",
    "తెలుగు భాష ಕನ್ನಡ ಭಾಷೆ മലയാളം ഭാഷ",
    "ਪੰਜਾਬੀ ਭਾਸ਼ਾ ગુજરાતી ભાષા ଓଡ଼ିଆ ଭାଷା",
    "සිංහල භාෂාව",
    # --- SE Asian scripts
    "ภาษาไทยมีวรรณยุกต์ เช่น ก่ ก้ ก๊ ก๋ และสระบนล่าง ที่ ดี๋ น้ำ",
    "ภาษาไทยเป็นภาษาที่มีวรรณยุกต์",
    "ผู้ใหญ่หาผ้าใหม่ ให้สะใภ้ใช้คล้องคอ",
    "กรุงเทพมหานคร อมรรัตนโกสินทร์",
    "ขอบคุณมากครับ ยินดีที่ได้รู้จัก",
    "ພາສາລາວ ມີ ວັນນະຍຸດ",
    "မြန်မာဘာသာ",
    "ភាសាខ្មែរ",
    "བོད་ཡིག་",
    # --- Semitic points
    "בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם וְאֵת הָאָרֶץ",
    "שָׁלוֹם, עוֹלָם! ״עִבְרִית״",
    "תּוֹרָה",
    "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ",
    "العَرَبِيَّةُ لُغَةٌ جَمِيلَةٌ، أَلَيْسَ كَذَٰلِكَ؟",
    "قُلْ هُوَ اللَّهُ أَحَدٌ",
    "مُحَمَّدٌ رَسُولُ اللَّهِ",
    "كِتَابٌ جَدِيدٌ وَقَلَمٌ",
    "ܫܠܡܐ ܥܠܡܐ ܐܰܪܰܡܳܝܳܐ",
    # --- Japanese and Korean combining sound marks / jamo
    "か\u3099 カ\u309a \u30bb\u309a \u3046\u3099",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af",
    # --- Emoji with variation selectors (Mn) and joiners
    "❤️ ☺️ ✌️ ⚠️ ❤\ufe0e text style",
    "🏳️‍🌈 🏳️‍⚧️ 👁️‍🗨️ ❤️‍🔥",
    "variation selectors: 葛\U000e0100 辻\U000e0101 a\ufe00",
    # --- Zalgo
    zalgo("Zalgo is coming", 3),
    zalgo("H\u0335E COMES", 6),
    "Z" + "\u0336\u0337\u0338" * 40 + "!",
    "\u0301" * 60,
    # --- marks next to the new special tokens
    "<|im_start|>\u0301user\u0302<|im_end|>\u0303",
    "<|vision_start|>\u0301<|image_pad|>\u0302<|vision_end|>",
]

SPECIAL_CORPUS = [
    "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|>"
    "<|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|vision_start|><|video_pad|><|vision_end|><|vision_pad|>",
    "<|audio_start|><|audio_pad|><|audio_pad|><|audio_end|> transcribe",
    "<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(10,20),"
    "(30,40)<|box_end|><|quad_start|><|quad_end|>",
    "<|fim_prefix|>def f(x):\n<|fim_suffix|>\n    return y<|fim_middle|>",
    "<|repo_name|>qwen<|file_sep|>main.cpp<|fim_pad|>",
    "<tool_response>\n{\"ok\": true}\n</tool_response>",
    "<|im_end|><|endoftext|><|audio_end|><|im_start|>",
    "almost <|audio_start| and <|vision_end |> and <|image_pad",
    "<|qwen35_vocab_pad_151643|> <|qwen35_vocab_pad_248043|> are just text",
    "<|endoftext|>",
]

CORPUS = QWEN3_CORPUS + MARKS_CORPUS + SPECIAL_CORPUS


def derive(base, split_regex, added_tokens, pad_begin, pad_end):
    """The Qwen3.5-style tokenizer.json (as a dict) derived from `base`."""
    derived = copy.deepcopy(base)
    steps = derived["pre_tokenizer"]["pretokenizers"]
    assert steps[0]["type"] == "Split" and "Regex" in steps[0]["pattern"]
    steps[0]["pattern"]["Regex"] = split_regex
    vocab = derived["model"]["vocab"]
    for i in range(pad_begin, pad_end):
        token = PAD_FORMAT.format(i)
        assert token not in vocab
        vocab[token] = i
    derived["added_tokens"] = copy.deepcopy(added_tokens)
    return derived


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer",
                        default=os.path.join(ROOT, BASE_TOKENIZER_REL))
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("error: needs the HuggingFace tokenizers package "
                 "(pip install tokenizers)")

    with open(args.tokenizer, "rb") as f:
        raw = f.read()
    base = json.loads(raw)
    base_regex = base["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    if base_regex != QWEN3_SPLIT_REGEX:
        sys.exit("error: the base tokenizer's Split regex is not Qwen3's")
    base_vocab_size = len(base["model"]["vocab"])
    assert max(base["model"]["vocab"].values()) == base_vocab_size - 1

    names = [t["content"] for t in base["added_tokens"]]
    names += EXTRA_SPECIAL_TOKENS
    flags = {t["content"]: t for t in base["added_tokens"]}
    added_tokens = []
    for i, name in enumerate(names):
        tok = dict(flags.get(name, {
            "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}))
        tok["id"] = FIRST_ADDED_ID + i
        tok["content"] = name
        added_tokens.append({k: tok[k] for k in (
            "id", "content", "single_word", "lstrip", "rstrip", "normalized",
            "special")})

    def load(regex):
        derived = derive(base, regex, added_tokens, base_vocab_size,
                         FIRST_ADDED_ID)
        tok = Tokenizer.from_str(json.dumps(derived))
        # HF renumbers added tokens that do not follow the vocab: check that
        # the ids in the file are the ones it uses.
        for t in added_tokens:
            assert tok.token_to_id(t["content"]) == t["id"], t
        return tok

    tok = load(QWEN35_SPLIT_REGEX)
    tok_qwen3_regex = load(QWEN3_SPLIT_REGEX)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    assert vocab_size == added_tokens[-1]["id"] + 1

    entries = []
    differ = 0
    for text in CORPUS:
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        ids_no_special = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        ids_qwen3 = tok_qwen3_regex.encode(text, add_special_tokens=False).ids
        differ += ids_qwen3 != ids
        assert all(i < base_vocab_size or i >= FIRST_ADDED_ID
                   for i in ids + ids_no_special), "a padding id came out"
        entries.append({
            "text": text,
            "ids": ids,
            "ids_no_special": ids_no_special,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            "ids_qwen3_regex": ids_qwen3,
        })

    header = {
        "base_tokenizer": BASE_TOKENIZER_REL,
        "base_sha256": hashlib.sha256(raw).hexdigest(),
        "base_vocab_size": base_vocab_size,
        "split_regex": QWEN35_SPLIT_REGEX,
        "qwen3_split_regex": QWEN3_SPLIT_REGEX,
        "vocab_padding": {"begin": base_vocab_size, "end": FIRST_ADDED_ID,
                          "format": PAD_FORMAT},
        "vocab_size": vocab_size,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key, value in header.items():
            f.write(f"  {json.dumps(key)}: "
                    f"{json.dumps(value, ensure_ascii=False)},\n")
        f.write('  "added_tokens": [\n')
        for i, t in enumerate(added_tokens):
            f.write("    " + json.dumps(t, ensure_ascii=False))
            f.write(",\n" if i + 1 < len(added_tokens) else "\n")
        f.write("  ],\n")
        f.write('  "cases": [\n')
        for i, e in enumerate(entries):
            f.write("    " + json.dumps(e, ensure_ascii=False))
            f.write(",\n" if i + 1 < len(entries) else "\n")
        f.write("  ]\n}\n")
    print(f"wrote {len(entries)} entries to {args.output} "
          f"({differ} encode differently with the Qwen3 regex)")


if __name__ == "__main__":
    main()
