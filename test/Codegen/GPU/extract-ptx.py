#!/usr/bin/env python3
"""Prints the PTX of the gpu.binary objects in MLIR text read from stdin.

`gpu-module-to-binary format=isa` stores each module's PTX as the
`assembly = "..."` string of a #gpu.object; MLIR escapes `"` and `\\` and
writes other non-printable bytes as \\XX (two hex digits). With one object
the PTX goes to stdout; with an output folder every object is written there
as NAME.ptx (NAME: the gpu.binary symbol, then the object's index if the
binary has several).

    qwen-opt ... --qwen-gpu-lower-to-nvvm | extract-ptx.py > kernels.ptx
    qwen-opt ... --qwen-gpu-lower-to-nvvm | extract-ptx.py --out-dir DIR
"""
import argparse
import os
import re
import sys

HEX = "0123456789abcdefABCDEF"


def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in HEX and i + 2 < len(text) and text[i + 2] in HEX:
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out += nxt.encode("utf-8")
            i += 2
    return out.decode("utf-8")


def objects(mlir):
    """Yields (binary name, index, PTX) for each assembly object."""
    binary = re.compile(r'gpu\.binary\s+@([\w$.]+)')
    assembly = re.compile(r'assembly\s*=\s*"((?:[^"\\]|\\.)*)"', re.S)
    for match in binary.finditer(mlir):
        start = match.end()
        nxt = binary.search(mlir, start)
        body = mlir[start:nxt.start() if nxt else len(mlir)]
        for index, obj in enumerate(assembly.finditer(body)):
            yield match.group(1), index, unescape(obj.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", help="write NAME.ptx files here")
    args = parser.parse_args()
    found = list(objects(sys.stdin.read()))
    if not found:
        sys.exit("extract-ptx: no gpu.binary with PTX (assembly) objects in the input")
    if not args.out_dir:
        if len(found) != 1:
            sys.exit("extract-ptx: %d PTX objects; use --out-dir" % len(found))
        sys.stdout.write(found[0][2])
        return
    os.makedirs(args.out_dir, exist_ok=True)
    for name, index, ptx in found:
        several = sum(1 for n, _, _ in found if n == name) > 1
        path = os.path.join(args.out_dir, name + ("_%d" % index if several else "") + ".ptx")
        with open(path, "w") as f:
            f.write(ptx)


if __name__ == "__main__":
    main()
