#!/usr/bin/env python3
"""Generate the chat template references for the C++ tests (chat_test.cpp).

For each conversation of the corpus below and each set of options
(add_generation_prompt, enable_thinking), renders the prompt with HF
transformers' `tokenizer.apply_chat_template(..., tokenize=False)` and the
checkpoint's own `chat_template`, and writes conversation + expected text (or
the template's error) to test/data/chat/<style>_reference.json. The C++
renderer (runtime/src/chat.cpp) must reproduce every expected string byte for
byte and refuse every case the template refuses. CI only reads the JSON.

Templates:
  * Qwen3: the "chat_template" of models/checkpoints/qwen3-demo/
    tokenizer_config.json (the Qwen3-0.6B .. 32B template, in the repo).
  * Qwen3.5: not in the repo. Pass a Qwen3.5 checkpoint folder
    (chat_template.jinja or tokenizer_config.json) or a .jinja file. The
    committed references were made with the copy that PyPI's llama-cpp-python
    0.3.36 source package vendors from llama.cpp:
        pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36
        tar xzf llama_cpp_python-0.3.36.tar.gz \\
          llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/Qwen3.5-4B.jinja
    (sha256 a4aee8afcf2e0711942cf848899be66016f8d14a889ff9ede07bca099c28f715,
    recorded in the output).

What a serving stack does before the template, and the C++ renderer does too,
is done here to the messages before calling transformers (the JSON keeps the
messages as a client sends them):
  * Qwen3's template only takes string content: text parts are joined with
    "\\n" (vLLM's "string" content format) and a null content becomes "".
  * Qwen3.5's template iterates tool call arguments as a mapping: arguments
    sent as a JSON string are parsed first (as vLLM does).

Run by developers when the corpus or a template changes, never by CI:

    python3 -m venv .venv-chat && .venv-chat/bin/pip install -r scripts/requirements-chat.txt
    .venv-chat/bin/python scripts/gen_chat_reference.py --qwen35-template PATH
"""

import argparse
import copy
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QWEN3_CHECKPOINT = os.path.join(ROOT, "models", "checkpoints", "qwen3-demo")
OUT_DIR = os.path.join(ROOT, "test", "data", "chat")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city — «°C» or «°F».",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "days": {"type": "integer", "minimum": 1, "maximum": 16},
                "metric": {"type": "boolean", "default": True},
                "threshold": {"type": "number", "default": 0.5, "minimum": 1e-05,
                              "maximum": 1e16, "multipleOf": 0.25},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": ["object", "null"]},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.\nReturns the top results.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                       "required": ["q"]},
    },
}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def call(name, arguments, call_id="call_0"):
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


WEATHER_ARGS = {"city": "Paris", "days": 3, "metric": False, "threshold": 2.5,
                "tags": ["rain", "wind"], "extra": {"unit": "°C", "n": None}}

# Each case: name, messages (OpenAI format), tools (or None).
CORPUS = [
    ("single_user", [{"role": "user", "content": "Hello!"}], None),
    ("system_and_user", [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"}], None),
    ("multi_turn", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
        {"role": "user", "content": "Thanks!"}], None),
    ("think_in_history_content", [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nThe user greets.\n</think>\n\nHello!"},
        {"role": "user", "content": "Bye"}], None),
    ("think_in_final_content", [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\n\nhmm\n\n</think>\n\n\nHello!"}], None),
    ("reasoning_content_field", [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "\nGreeting back.\n"},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "Fine.", "reasoning_content": "  Polite answer.  "}],
     None),
    ("reasoning_field_and_think_content", [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "<think>x</think>A", "reasoning_content": "r"}], None),
    ("empty_reasoning_after_query", [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A1"},
        {"role": "assistant", "content": "A2"}], None),
    ("several_think_blocks", [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "<think>a</think>b<think>c</think>\nd"}], None),
    ("tools_no_system", [{"role": "user", "content": "Weather in Paris?"}], TOOLS),
    ("tools_with_system", [
        {"role": "system", "content": "  You are a weather bot.\n"},
        {"role": "user", "content": "Weather in Paris?"}], TOOLS),
    ("tools_with_empty_system", [
        {"role": "system", "content": ""},
        {"role": "user", "content": "Weather?"}], [SEARCH_TOOL]),
    ("tool_call_dict_args_and_results", [
        {"role": "user", "content": "Weather in Paris and news?"},
        {"role": "assistant", "content": "",
         "tool_calls": [call("get_weather", WEATHER_ARGS, "call_1"),
                        call("search", {"q": "Paris news"}, "call_2")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 20}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Nothing new."},
        {"role": "assistant", "content": "It is 20 °C; no news."},
        {"role": "user", "content": "Thanks"}], TOOLS),
    ("tool_call_string_args", [
        {"role": "user", "content": "Search cats"},
        {"role": "assistant", "content": "Searching.",
         "tool_calls": [call("search", "{\"q\": \"cats\", \"n\": 2}")]},
        {"role": "tool", "content": "Cats are great."}], TOOLS),
    ("tool_call_null_content", [
        {"role": "user", "content": "Search dogs"},
        {"role": "assistant", "content": None,
         "tool_calls": [call("search", {"q": "dogs"})]},
        {"role": "tool", "content": "  Dogs too.\n"}], TOOLS),
    ("tool_call_after_reasoning", [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "I will check.",
         "reasoning_content": "Need the weather tool.",
         "tool_calls": [call("get_weather", {"city": "Oslo", "days": 1})]},
        {"role": "tool", "content": "{\"temp\": -3}"},
        {"role": "assistant", "content": "<think>\nIt is cold.\n</think>\n\n-3 °C."}], TOOLS),
    ("tool_call_nested_values", [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "",
         "tool_calls": [call("get_weather", {
             "city": "São Paulo \"SP\"\n2nd line\ttab", "days": 10, "metric": True,
             "threshold": 1e-07, "tags": [], "extra": None, "big": 12345678901234567,
             "f": 100.0, "g": 1.5e300, "esc": "\u0001\u001f\\/"})]}], TOOLS),
    ("user_tool_response_is_not_a_query", [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>r1</think>a1"},
        {"role": "user", "content": "<tool_response>\nresult\n</tool_response>"},
        {"role": "assistant", "content": "<think>r2</think>a2"}], None),
    ("text_parts", [
        {"role": "system", "content": [{"type": "text", "text": "Sys A."},
                                       {"type": "text", "text": "Sys B."}]},
        {"role": "user", "content": [{"type": "text", "text": "Part one."},
                                     {"type": "text", "text": " Part two. "}]}], None),
    ("text_parts_with_tools", [
        {"role": "system", "content": [{"type": "text", "text": "Sys."}]},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}], [WEATHER_TOOL]),
    ("whitespace_and_unicode", [
        {"role": "system", "content": "\u3000 sys \xa0"},
        {"role": "user", "content": "  \n héllo wörld 😀 \u2003\n"},
        {"role": "assistant", "content": "\n\n  answer \u2028"},
        {"role": "user", "content": "\t next \x0b"}], None),
    ("system_not_first", [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Late system."}], None),
    ("no_user_query", [
        {"role": "system", "content": "Sys"},
        {"role": "assistant", "content": "Hello"}], None),
    ("tool_first", [
        {"role": "tool", "content": "orphan result"},
        {"role": "user", "content": "Hi"}], None),
    ("continue_final_assistant", [
        {"role": "user", "content": "Write a poem"},
        {"role": "assistant", "content": "<think>\nShort one.\n</think>\n\nRoses are red"}], None),
]

OPTIONS = [
    {"add_generation_prompt": True, "enable_thinking": None},
    {"add_generation_prompt": True, "enable_thinking": True},
    {"add_generation_prompt": True, "enable_thinking": False},
    {"add_generation_prompt": False, "enable_thinking": None},
]


def text_parts_joined(content, sep):
    if isinstance(content, list):
        return sep.join(part["text"] for part in content)
    return content


def prepare_qwen3(messages):
    out = copy.deepcopy(messages)
    for m in out:
        m["content"] = text_parts_joined(m.get("content"), "\n")
        if m["content"] is None:
            m["content"] = ""
    return out


def prepare_qwen35(messages):
    out = copy.deepcopy(messages)
    for m in out:
        for tc in m.get("tool_calls") or []:
            fn = tc["function"]
            if isinstance(fn["arguments"], str):
                fn["arguments"] = json.loads(fn["arguments"])
    return out


def read_template(path):
    """A .jinja file, a tokenizer_config.json, or a checkpoint folder."""
    if os.path.isdir(path):
        jinja = os.path.join(path, "chat_template.jinja")
        path = jinja if os.path.exists(jinja) else os.path.join(path, "tokenizer_config.json")
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            template = json.load(f)["chat_template"]
        if isinstance(template, list):
            template = next(t["template"] for t in template if t["name"] == "default")
        return template
    with open(path, encoding="utf-8") as f:
        return f.read()


def fnv1a(text):
    h = 0xcbf29ce484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def generate(tokenizer, template, style, source, prepare):
    import transformers
    cases = []
    for name, messages, tools in CORPUS:
        for opts in OPTIONS:
            kwargs = {"add_generation_prompt": opts["add_generation_prompt"]}
            if opts["enable_thinking"] is not None:
                kwargs["enable_thinking"] = opts["enable_thinking"]
            case = {"name": name, "messages": messages, "tools": tools, **opts}
            try:
                case["expected"] = tokenizer.apply_chat_template(
                    prepare(messages), tools=tools, chat_template=template, tokenize=False,
                    **kwargs)
            except Exception as e:  # the template refuses: the C++ must too
                case["expected"] = None
                case["error"] = "%s: %s" % (type(e).__name__, e)
            cases.append(case)
    return {
        "style": style,
        "template_source": source,
        "template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
        "template_fnv1a": fnv1a(template),
        "transformers": transformers.__version__,
        "cases": cases,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qwen3-template", default=QWEN3_CHECKPOINT,
                    help="Qwen3 checkpoint folder, tokenizer_config.json or .jinja")
    ap.add_argument("--qwen35-template", required=True,
                    help="Qwen3.5 checkpoint folder, tokenizer_config.json or .jinja")
    ap.add_argument("--qwen35-source", default="llama-cpp-python==0.3.36 (PyPI sdist): "
                    "vendor/llama.cpp/models/templates/Qwen3.5-4B.jinja",
                    help="where the Qwen3.5 template came from, recorded in the output")
    ap.add_argument("--out-dir", default=OUT_DIR)
    args = ap.parse_args()

    from transformers import AutoTokenizer
    # Any tokenizer renders a given chat_template; the repo's Qwen3 one is at hand.
    tokenizer = AutoTokenizer.from_pretrained(QWEN3_CHECKPOINT)
    os.makedirs(args.out_dir, exist_ok=True)
    jobs = [
        ("qwen3", read_template(args.qwen3_template),
         "models/checkpoints/qwen3-demo/tokenizer_config.json (Qwen3-0.6B .. 32B)", prepare_qwen3),
        ("qwen3.5", read_template(args.qwen35_template), args.qwen35_source, prepare_qwen35),
    ]
    for style, template, source, prepare in jobs:
        data = generate(tokenizer, template, style, source, prepare)
        out = os.path.join(args.out_dir, style.replace(".", "") + "_reference.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
        errors = sum(1 for c in data["cases"] if c["expected"] is None)
        print("%s: %d cases (%d refused by the template) -> %s" %
              (out, len(data["cases"]), errors, os.path.relpath(out, ROOT)))


if __name__ == "__main__":
    sys.exit(main())
