"""Writes a JSON object whose KEY holds a value nested DEPTH lists deep
(stdlib only): the generator of the deep-nesting regression inputs.

usage: nested_json.py OUT DEPTH [KEY=VALUE ...]
  KEY=VALUE pairs (VALUE as JSON) are written first, then "nested": [[[...]]].
"""
import json
import sys

out, depth = sys.argv[1], int(sys.argv[2])
fields = [json.dumps(k) + ": " + v for k, v in (a.split("=", 1) for a in sys.argv[3:])]
fields.append('"nested": ' + "[" * depth + "]" * depth)
with open(out, "w") as f:
    f.write("{" + ", ".join(fields) + "}")
