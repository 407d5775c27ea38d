//===- qwen-check-logits.cpp - Compare logits with HF references ----------===//
//
//   qwen-check-logits OURS.safetensors REFERENCE.safetensors --prefix p0.
//       [--suffix _f32] [--max-abs X] [--min-cosine C] [--decode-steps N]
//   qwen-check-logits --print-ids FILE NAME[,NAME...]
//       prints the int32 tensors NAME... concatenated as "1,2,3"
//   qwen-check-logits --consistency STEPPED FULL [--max-abs X]
//       STEPPED: prefill then decode steps; FULL: one forward over the
//       prompt and every decode token. Rows must agree.
//
// OURS is written by `qwen-run logits` (prompt_ids, prompt_logits,
// decode_ids, decode_logits); REFERENCE by scripts/gen_reference.py
// (p{k}.prompt_ids, p{k}.prompt_logits[_f32], p{k}.decode_ids,
// p{k}.decode_logits[_f32]). Prints the largest absolute difference, the
// smallest per-row cosine similarity and whether greedy tokens agree, then
// "N passed, M failed".
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace qwen::rt;

namespace {
std::vector<float> floats(const TensorView &t) {
  if (t.dtype != DType::F32)
    throw Error("tensor '" + t.name + "' must be float32");
  std::vector<float> out(t.numel());
  std::memcpy(out.data(), t.data, out.size() * sizeof(float));
  return out;
}
std::vector<int32_t> ints(const TensorView &t) {
  if (t.dtype != DType::I32)
    throw Error("tensor '" + t.name + "' must be int32");
  std::vector<int32_t> out(t.numel());
  std::memcpy(out.data(), t.data, out.size() * sizeof(int32_t));
  return out;
}

struct Comparison {
  double maxAbs = 0, minCosine = 1;
  int64_t rows = 0;
};

Comparison compare(const std::vector<float> &ours, const std::vector<float> &ref,
                   int64_t vocab, int64_t rows) {
  Comparison c;
  c.rows = rows;
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      double a = ours[r * vocab + v], b = ref[r * vocab + v];
      c.maxAbs = std::max(c.maxAbs, std::fabs(a - b));
      dot += a * b;
      na += a * a;
      nb += b * b;
    }
    double cosine = dot / (std::sqrt(na) * std::sqrt(nb) + 1e-30);
    c.minCosine = std::min(c.minCosine, cosine);
  }
  return c;
}
} // namespace

/// Prints int32 tensors of a file, concatenated, comma-separated.
static int printIds(const char *path, const std::string &names) {
  SafetensorsArchive file = SafetensorsArchive::openFile(path);
  std::string out;
  size_t start = 0;
  while (start <= names.size()) {
    size_t end = names.find(',', start);
    if (end == std::string::npos)
      end = names.size();
    for (int32_t id : ints(file.get(names.substr(start, end - start))))
      out += (out.empty() ? "" : ",") + std::to_string(id);
    start = end + 1;
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

/// Prefill-then-decode against one full forward over the same tokens.
static int consistency(const char *steppedPath, const char *fullPath, double maxAbs) {
  SafetensorsArchive stepped = SafetensorsArchive::openFile(steppedPath);
  SafetensorsArchive full = SafetensorsArchive::openFile(fullPath);
  const TensorView &prompt = stepped.get("prompt_logits");
  const TensorView &decode = stepped.get("decode_logits");
  const TensorView &all = full.get("prompt_logits");
  int64_t vocab = prompt.shape[1], p = prompt.shape[0], n = decode.shape[0];
  if (all.shape[0] != p + n || all.shape[1] != vocab)
    throw Error("full forward has " + std::to_string(all.shape[0]) + " rows, expected " +
                std::to_string(p + n));
  std::vector<float> a = floats(prompt), d = floats(decode), f = floats(all);
  a.insert(a.end(), d.begin(), d.end());
  Comparison c = compare(a, f, vocab, p + n);
  bool ok = c.maxAbs <= maxAbs;
  std::printf("%s: prefill+decode vs one forward over %lld tokens: max |diff| %.3g <= %.3g\n",
              ok ? "PASS" : "FAIL", static_cast<long long>(p + n), c.maxAbs, maxAbs);
  std::printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  try {
    if (argc == 4 && std::string(argv[1]) == "--print-ids")
      return printIds(argv[2], argv[3]);
    if (argc >= 4 && std::string(argv[1]) == "--consistency")
      return consistency(argv[2], argv[3],
                         argc >= 6 && std::string(argv[4]) == "--max-abs" ? std::atof(argv[5])
                                                                           : 1e-4);
  } catch (const Error &error) {
    std::fprintf(stderr, "qwen-check-logits: error: %s\n", error.what());
    return 2;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: qwen-check-logits OURS REFERENCE --prefix p0. [--suffix _f32] "
                         "[--max-abs X] [--min-cosine C] [--decode-steps N]\n");
    return 2;
  }
  std::string prefix, suffix;
  double maxAbs = 1e-3, minCosine = 0.9999;
  int decodeSteps = -1;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--prefix")
      prefix = value;
    else if (flag == "--suffix")
      suffix = value;
    else if (flag == "--max-abs")
      maxAbs = std::atof(value.c_str());
    else if (flag == "--min-cosine")
      minCosine = std::atof(value.c_str());
    else if (flag == "--decode-steps")
      decodeSteps = std::atoi(value.c_str());
    else {
      std::fprintf(stderr, "qwen-check-logits: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  int passed = 0, failed = 0;
  auto check = [&](bool ok, const std::string &what) {
    std::printf("%s: %s\n", ok ? "PASS" : "FAIL", what.c_str());
    (ok ? passed : failed)++;
  };
  try {
    SafetensorsArchive ours = SafetensorsArchive::openFile(argv[1]);
    SafetensorsArchive ref = SafetensorsArchive::openFile(argv[2]);
    check(ints(ours.get("prompt_ids")) == ints(ref.get(prefix + "prompt_ids")),
          "prompt ids match the reference prompt");
    for (std::string part : {"prompt", "decode"}) {
      const TensorView &mine = ours.get(part + "_logits");
      const TensorView &theirs = ref.get(prefix + part + "_logits" + suffix);
      int64_t vocab = mine.shape.back();
      int64_t rows = mine.shape.front();
      if (part == "decode" && decodeSteps >= 0)
        rows = std::min<int64_t>(rows, decodeSteps);
      if (theirs.shape.back() != vocab || theirs.shape.front() < rows) {
        check(false, part + " logits shape matches the reference");
        continue;
      }
      Comparison c = compare(floats(mine), floats(theirs), vocab, rows);
      char line[256];
      std::snprintf(line, sizeof(line),
                    "%s logits (%lld rows): max |diff| %.3g <= %.3g, min cosine %.7f >= %.7f",
                    part.c_str(), static_cast<long long>(rows), c.maxAbs, maxAbs, c.minCosine,
                    minCosine);
      check(c.maxAbs <= maxAbs && c.minCosine >= minCosine, line);
    }
    std::vector<int32_t> mineIds = ints(ours.get("decode_ids"));
    std::vector<int32_t> refIds = ints(ref.get(prefix + "decode_ids"));
    size_t n = decodeSteps >= 0 ? std::min<size_t>(decodeSteps, mineIds.size()) : mineIds.size();
    bool same = n <= refIds.size() &&
                std::equal(mineIds.begin(), mineIds.begin() + n, refIds.begin());
    check(same, "greedy decode tokens equal the reference (" + std::to_string(n) + " steps)");
  } catch (const Error &error) {
    std::fprintf(stderr, "qwen-check-logits: error: %s\n", error.what());
    return 2;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
