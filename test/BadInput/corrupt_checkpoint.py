"""Makes a broken copy of a checkpoint folder for error tests (stdlib only).

usage: corrupt_checkpoint.py SRC DST MODE [TENSOR]
  drop TENSOR      remove a tensor from model.safetensors
  reshape TENSOR   declare a tensor with its rows halved (data kept consistent)
  truncate         cut model.safetensors in the middle of its data
  header           write an absurd header length
  badjson          make the header invalid JSON
  nan TENSOR       make the first element of a float32 tensor NaN
"""
import json
import shutil
import struct
import sys

src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
tensor = sys.argv[4] if len(sys.argv) > 4 else None
shutil.copytree(src, dst, dirs_exist_ok=True)
path = dst + "/model.safetensors"
raw = open(path, "rb").read()
(length,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + length])
data = raw[8 + length:]


def write(new_header, new_data):
    text = json.dumps(new_header).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + new_data)


if mode == "drop":
    del header[tensor]
    write(header, data)
elif mode == "reshape":
    entry = header[tensor]
    begin, end = entry["data_offsets"]
    entry["shape"][0] //= 2
    entry["data_offsets"] = [begin, begin + (end - begin) // 2]
    write(header, data)
elif mode == "nan":
    begin = header[tensor]["data_offsets"][0]
    data = data[:begin] + struct.pack("<f", float("nan")) + data[begin + 4:]
    write(header, data)
elif mode == "truncate":
    open(path, "wb").write(raw[: 8 + length + len(data) // 2])
elif mode == "header":
    open(path, "wb").write(struct.pack("<Q", 1 << 60) + raw[8:])
elif mode == "badjson":
    open(path, "wb").write(raw[:8] + b"{?" + raw[10:])
else:
    sys.exit("unknown mode " + mode)
