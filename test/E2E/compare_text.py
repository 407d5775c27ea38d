"""Checks that generated text equals the HF greedy reference (stdlib only).

usage: compare_text.py EXPECTED.json INDEX OUTPUT.txt
"""
import json
import sys

expected = json.load(open(sys.argv[1], encoding="utf-8"))["results"][int(sys.argv[2])]
got = open(sys.argv[3], encoding="utf-8").read()
want = expected["text"]
if got == want or got == want + "\n":
    print(f"PASS: {expected['prompt']!r} continues word for word ({len(want)} characters)")
    sys.exit(0)
common = 0
while common < min(len(got), len(want)) and got[common] == want[common]:
    common += 1
print(f"FAIL: {expected['prompt']!r} differs after {common} characters")
print(f"  expected: {want[common:common + 80]!r}")
print(f"  got:      {got[common:common + 80]!r}")
sys.exit(1)
