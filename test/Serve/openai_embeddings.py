"""POST /v1/embeddings through the official OpenAI Python client:
client.embeddings.create with its default (base64) and float encodings equals
`qwen-run embed`, and its errors are the client's exception types.

usage: openai_embeddings.py EMBEDDING_ARTIFACT CASE_DIR   (the test venv's python)
"""
import json
import os
import struct
import subprocess
import sys

import openai

from serve_harness import Server, check

MODEL = "qwen3-embedding"


def as_float32(values):
    return [struct.unpack("<f", struct.pack("<f", x))[0] for x in values]


def main():
    artifact, case_dir = sys.argv[1:3]
    with open(os.path.join(case_dir, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    out = subprocess.run(["qwen-run", "embed", artifact, *texts], capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, f"qwen-run embed: {out.stderr}")
    expected = json.loads(out.stdout)

    server = Server(artifact, "--served-model-name", MODEL, "--api-key", "k")
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="k", timeout=60, max_retries=0)
    check([m.id for m in client.models.list().data] == [MODEL], "models")

    # The client asks for base64 unless told otherwise and decodes it itself.
    got = client.embeddings.create(model=MODEL, input=texts)
    check(len(got.data) == len(texts) and [d.index for d in got.data] == list(range(len(texts))), "data")
    check([as_float32(d.embedding) for d in got.data] == [as_float32(e) for e in expected],
          "default (base64) embeddings differ from qwen-run embed")
    check(got.model == MODEL and got.usage.prompt_tokens == got.usage.total_tokens > len(texts), f"{got.usage}")
    floats = client.embeddings.create(model=MODEL, input=texts[0], encoding_format="float",
                                      dimensions=len(expected[0]), user="someone")
    check(floats.data[0].embedding == expected[0], "float embeddings differ from qwen-run embed")
    print("PASS: client.embeddings.create equals qwen-run embed", flush=True)

    for kwargs, kind in [({"model": MODEL, "input": ""}, openai.BadRequestError),
                         ({"model": MODEL, "input": "x", "dimensions": 3}, openai.BadRequestError),
                         ({"model": "nope", "input": "x"}, openai.NotFoundError)]:
        try:
            client.embeddings.create(**kwargs)
            check(False, f"{kwargs} raised nothing")
        except kind:
            pass
    try:
        client.completions.create(model=MODEL, prompt="hi", max_tokens=1)
        check(False, "a completion from an embedding model raised nothing")
    except openai.BadRequestError as e:
        check("embedding model" in str(e), str(e))
    print("PASS: errors as openai exceptions", flush=True)
    server.stop()
    print("PASS: all openai embeddings checks", flush=True)


if __name__ == "__main__":
    main()
