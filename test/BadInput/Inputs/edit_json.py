"""Sets values in a JSON file in place (stdlib only), for corrupting
manifests and indexes in error tests.

usage: edit_json.py FILE PATH=VALUE ...
  PATH is dot-separated keys and list indices (program.0.args.2); VALUE is JSON.
"""
import json
import sys

path = sys.argv[1]
doc = json.load(open(path))
for assignment in sys.argv[2:]:
    keys, value = assignment.split("=", 1)
    *parents, last = [int(k) if k.isdigit() else k for k in keys.split(".")]
    node = doc
    for key in parents:
        node = node[key]
    node[last] = json.loads(value)
json.dump(doc, open(path, "w"), indent=1)
