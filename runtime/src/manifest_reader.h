//===- manifest_reader.h - Checked reading of manifest.json -----*- C++ -*-===//
//
// Internal to the runtime: the accessors Artifact::parse and
// parseVisionProgram read manifest.json with, and the tables both program
// sections (the step's at the top level, the vision tower's under "vision")
// declare in one format: weights, buffers and program entries.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_MANIFEST_READER_H
#define QWEN_RT_MANIFEST_READER_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/error.h"
#include "qwen_rt/json_input.h"
#include "qwen_rt/launch_schema.h"
#include "qwen_rt/limits.h"

#include <array>
#include <cctype>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace qwen::rt::manifest {

namespace schema = qwen::launch_schema;
using nlohmann::json;

/// "T", "B", "P", "R": the kernel ABI's order of the step symbols.
extern const char *const kSymbolNames[NumSymbols];

inline bool isIdentifier(const std::string &s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      return false;
  return true;
}

/// Checked accessors over one manifest: every error names the manifest and
/// the JSON path. `symbols` are the step symbols its shapes may use (a bit
/// per Symbol): all four for the step program, T and R for the vision one.
class ManifestReader {
public:
  static constexpr unsigned kAllSymbols = (1u << NumSymbols) - 1;

  explicit ManifestReader(std::string path, unsigned symbols = kAllSymbols)
      : Path(std::move(path)), Symbols(symbols) {}

  [[noreturn]] void fail(const std::string &where, const std::string &what) const {
    throw Error(Path + ": " + where + ": " + what);
  }

  const json &field(const json &obj, const char *key, const std::string &where) const {
    if (!obj.is_object())
      fail(where, "expected a JSON object");
    auto it = obj.find(key);
    if (it == obj.end())
      fail(where, std::string("missing field \"") + key + "\"");
    return *it;
  }

  std::string str(const json &obj, const char *key, const std::string &where) const {
    const json &v = field(obj, key, where);
    if (!v.is_string())
      fail(where + "." + key, "expected a string, got " + jsonExcerpt(v));
    return v.get<std::string>();
  }

  int64_t integer(const json &v, const std::string &where) const {
    if (!v.is_number_integer())
      fail(where, "expected an integer, got " + jsonExcerpt(v));
    return v.get<int64_t>();
  }

  int64_t integer(const json &obj, const char *key, const std::string &where) const {
    return integer(field(obj, key, where), where + "." + key);
  }

  int64_t positive(const json &obj, const char *key, const std::string &where) const {
    int64_t v = integer(obj, key, where);
    if (v <= 0)
      fail(where + "." + key, "expected a positive integer, got " + std::to_string(v));
    return v;
  }

  /// A positive integer of at most `max` (one of the bounds of limits.h).
  int64_t bounded(const json &obj, const char *key, const std::string &where, int64_t max) const {
    int64_t v = positive(obj, key, where);
    if (v > max)
      fail(where + "." + key, std::to_string(v) + " exceeds the limit of " + std::to_string(max));
    return v;
  }

  /// A weight or buffer id: a non-negative integer that fits an int.
  int id(const json &v, const std::string &where) const {
    int64_t n = integer(v, where);
    if (n < 0 || n > INT32_MAX)
      fail(where, "id " + std::to_string(n) + " is out of range");
    return int(n);
  }

  const json &array(const json &obj, const char *key, const std::string &where) const {
    const json &v = field(obj, key, where);
    if (!v.is_array())
      fail(where + "." + key, "expected a list, got " + jsonExcerpt(v));
    return v;
  }

  DType dtype(const json &obj, const std::string &where) const {
    std::string name = str(obj, "dtype", where);
    std::optional<DType> t = parseDTypeName(name);
    if (!t)
      fail(where + ".dtype", "unknown dtype \"" + name + "\"");
    return *t;
  }

  /// A generated CUDA kernel's "block" (threads) and "shared_bytes".
  void launchGeometry(const json &obj, const std::string &where, int64_t &threads, int64_t &sharedBytes) const {
    threads = positive(obj, schema::kBlock.data(), where);
    if (threads > schema::kMaxBlockThreads)
      fail(where + "." + schema::kBlock.data(), "at most " + std::to_string(schema::kMaxBlockThreads) +
                                                  " threads per block, got " + std::to_string(threads));
    sharedBytes = integer(obj, schema::kSharedBytes.data(), where);
    if (sharedBytes < 0 || sharedBytes > schema::kMaxStaticSharedBytes)
      fail(where + "." + schema::kSharedBytes.data(),
           "expected 0 to " + std::to_string(schema::kMaxStaticSharedBytes) +
               " bytes of static shared memory, got " + std::to_string(sharedBytes));
  }

  /// A generated kernel launched by name: kernel, grid, block, shared_bytes.
  void launchable(const json &obj, const std::string &where, ProgramEntry::Launchable &out) const {
    out.kernel = str(obj, schema::kKernel.data(), where);
    if (!isIdentifier(out.kernel))
      fail(where + "." + schema::kKernel.data(), "\"" + out.kernel + "\" is not a valid C symbol name");
    out.grid = grid(obj, where);
    launchGeometry(obj, where, out.blockThreads, out.sharedBytes);
  }

  SymShape grid(const json &obj, const std::string &where) const {
    return symShape(field(obj, schema::kGrid.data(), where), where + "." + schema::kGrid.data(),
                    /*allowEmpty=*/false);
  }

  /// The launch of a generated kernel (the writer is
  /// lib/Target/Common/Manifest.cpp's writeLaunch; both spell it by
  /// launch_schema.h): its grid and, on CUDA, block, shared_bytes and the
  /// optional decode variant with its splits and combine kernel.
  void launch(const json &obj, const std::string &where, bool cuda, ProgramEntry &e) const {
    e.grid = grid(obj, where);
    if (!cuda)
      return;
    launchGeometry(obj, where, e.blockThreads, e.sharedBytes);
    if (!obj.contains(schema::kDecode.data()))
      return;
    const json &d = field(obj, schema::kDecode.data(), where);
    std::string dw = where + "." + schema::kDecode.data();
    launchable(d, dw, e.decode);
    const json &splits = field(d, schema::kSplits.data(), dw);
    std::string sw = dw + "." + schema::kSplits.data();
    e.decode.maxSplits = positive(splits, schema::kMaxSplits.data(), sw);
    e.decode.partialFloats = positive(splits, schema::kPartialFloats.data(), sw);
    // One split needs nothing to merge and no split length.
    if (e.decode.maxSplits > 1 || splits.contains(schema::kCombine.data()))
      launchable(field(splits, schema::kCombine.data(), sw), sw + "." + schema::kCombine.data(),
                 e.decode.combine);
    if (e.decode.maxSplits > 1 || splits.contains(schema::kSplitKeys.data()))
      e.decode.splitKeys = positive(splits, schema::kSplitKeys.data(), sw);
  }

  /// A cuBLASLt entry's decode variant (lib/Target/Common/Manifest.cpp):
  /// a generated kernel with the entry's arguments it takes ("args", indices
  /// into the entry's `numArgs` arguments) and the most GEMM rows it runs.
  void gemmDecode(const json &obj, const std::string &where, size_t numArgs, ProgramEntry::Variant &out) const {
    const json &d = field(obj, schema::kDecode.data(), where);
    std::string dw = where + "." + schema::kDecode.data();
    launchable(d, dw, out);
    const json &args = field(d, "args", dw);
    if (!args.is_array() || args.empty())
      fail(dw + ".args", "expected a non-empty list of argument indices, got " + jsonExcerpt(args));
    for (size_t j = 0; j < args.size(); ++j) {
      std::string aw = dw + ".args[" + std::to_string(j) + "]";
      int64_t a = integer(args[j], aw);
      if (a < 0 || uint64_t(a) >= numArgs)
        fail(aw, "argument " + std::to_string(a) + " does not exist (the entry has " + std::to_string(numArgs) +
                     ")");
      out.args.push_back(int(a));
    }
    out.maxRows = positive(d, "max_rows", dw);
  }

  bool boolean(const json &obj, const char *key, const std::string &where) const {
    const json &v = field(obj, key, where);
    if (!v.is_boolean())
      fail(where + "." + key, "expected true or false, got " + jsonExcerpt(v));
    return v.get<bool>();
  }

  /// A cuBLASLt descriptor (passes/Codegen/GPU/README.md) over `numArgs` launch arguments.
  GemmSpec gemm(const json &g, size_t numArgs, const std::string &where) const {
    GemmSpec s;
    const json &m = field(g, "m", where);
    if (m.is_string()) {
      s.m = symShape(json::array({m}), where + ".m")[0];
    } else {
      s.m.value = integer(m, where + ".m");
      if (s.m.value <= 0)
        fail(where + ".m", "expected a step symbol or a positive integer, got " + jsonExcerpt(m));
    }
    s.n = positive(g, "n", where);
    s.k = positive(g, "k", where);
    auto operand = [&](const char *name, bool withLd) {
      GemmSpec::Operand o;
      std::string p(name);
      int64_t arg = integer(g, (p + "_arg").c_str(), where);
      if (arg < 0 || uint64_t(arg) >= numArgs)
        fail(where + "." + p + "_arg", "argument " + std::to_string(arg) + " does not exist (the launch has " +
                                           std::to_string(numArgs) + ")");
      o.arg = int(arg);
      std::string type = str(g, (p + "_dtype").c_str(), where);
      std::optional<DType> t = parseDTypeName(type);
      const bool fp8 = t == DType::F8E4M3 && (p == "a" || p == "b");
      if (!t || (*t != DType::F32 && *t != DType::BF16 && *t != DType::F16 && !fp8))
        fail(where + "." + p + "_dtype", "expected f32, bf16 or f16" +
                                             std::string(p == "a" || p == "b" ? " (or f8e4m3)" : "") +
                                             ", got \"" + type + "\"");
      o.dtype = *t;
      if (withLd)
        o.ld = positive(g, ("ld" + p).c_str(), where);
      o.offset = integer(g, (p + "_offset").c_str(), where);
      if (o.offset < 0)
        fail(where + "." + p + "_offset", "must not be negative");
      return o;
    };
    s.a = operand("a", true);
    s.b = operand("b", true);
    if (s.a.ld < s.k || s.b.ld < s.k)
      fail(where, "lda and ldb must be at least k = " + std::to_string(s.k));
    if (boolean(g, "residual", where)) {
      s.c = operand("c", true);
      if (s.c.ld < s.n)
        fail(where + ".ldc", "must be at least n = " + std::to_string(s.n));
    }
    if (boolean(g, "bias", where))
      s.bias = operand("bias", false);
    std::string type = str(g, "d_dtype", where);
    std::optional<DType> d = parseDTypeName(type);
    if (!d || (*d != DType::F32 && *d != DType::BF16 && *d != DType::F16))
      fail(where + ".d_dtype", "expected f32, bf16 or f16, got \"" + type + "\"");
    s.dDtype = *d;
    if (g.contains("prologue")) {
      s.prologue = str(g, "prologue", where);
      if (!isIdentifier(s.prologue))
        fail(where + ".prologue", "\"" + s.prologue + "\" is not a valid C symbol name");
    }
    s.ldd = positive(g, "ldd", where);
    if (s.ldd != s.n)
      fail(where + ".ldd", "D is dense: expected ldd = n = " + std::to_string(s.n) + ", got " +
                               std::to_string(s.ldd));
    if (s.a.dtype != s.b.dtype)
      fail(where, "A (" + std::string(dtypeName(s.a.dtype)) + ") and B (" + dtypeName(s.b.dtype) +
                      ") must have one dtype for cuBLASLt");
    if (s.a.dtype == DType::F8E4M3) {
      // Block-scaled FP8: TN with 16-byte leading dimensions, whole 128-wide
      // K blocks, the weight's scale rows 16-byte aligned (GemmSpec::bScale).
      if (s.k % 128 || s.a.ld % 16 || s.b.ld % 16)
        fail(where, "an f8e4m3 GEMM needs k a multiple of 128 and lda, ldb multiples of 16");
      auto scale = [&](const char *name) {
        GemmSpec::Operand o;
        std::string p(name);
        int64_t arg = integer(g, (p + "_scale_arg").c_str(), where);
        if (arg < 0 || uint64_t(arg) >= numArgs)
          fail(where + "." + p + "_scale_arg", "argument " + std::to_string(arg) + " does not exist");
        o.arg = int(arg);
        o.offset = integer(g, (p + "_scale_offset").c_str(), where);
        if (o.offset < 0 || o.offset % 4)
          fail(where + "." + p + "_scale_offset", "must be a non-negative multiple of 4 (16 bytes)");
        return o;
      };
      s.aScale = scale("a");
      s.bScale = scale("b");
      s.bScale.ld = positive(g, "ldb_scale", where);
      if (s.bScale.ld != s.k / 128 || s.bScale.ld % 4)
        fail(where + ".ldb_scale", "expected k / 128 = " + std::to_string(s.k / 128) + ", a multiple of 4");
    }
    return s;
  }

  SymShape symShape(const json &v, const std::string &where, bool allowEmpty = true) const {
    if (!v.is_array())
      fail(where, "expected a list of integers and symbol names, got " + jsonExcerpt(v));
    if (!allowEmpty && v.empty())
      fail(where, "must not be empty");
    if (v.size() > limits::kMaxTensorRank)
      fail(where, "has " + std::to_string(v.size()) + " dimensions; at most " +
                      std::to_string(limits::kMaxTensorRank) + " are supported");
    SymShape shape;
    for (size_t i = 0; i < v.size(); ++i) {
      ShapeDim d;
      const json &e = v[i];
      if (e.is_string()) {
        std::string s = e.get<std::string>();
        std::string known;
        for (int k = 0; k < NumSymbols; ++k) {
          if (!(Symbols >> k & 1))
            continue;
          known += (known.empty() ? "" : ", ") + std::string(kSymbolNames[k]);
          if (s == kSymbolNames[k])
            d.symbol = k;
        }
        if (d.symbol < 0)
          fail(where, "unknown symbol \"" + s + "\" (known symbols: " + known + ")");
      } else if (e.is_number_integer() && e.get<int64_t>() > 0) {
        d.value = e.get<int64_t>();
        if (d.value > limits::kMaxTensorElements)
          fail(where, "entry " + std::to_string(i) + " is " + std::to_string(d.value) +
                          ", more than 2^40 elements");
      } else {
        fail(where, "entry " + std::to_string(i) + " must be a positive integer or a symbol name, got " + jsonExcerpt(e));
      }
      shape.push_back(d);
    }
    return shape;
  }

  std::vector<int64_t> staticShape(const json &v, const std::string &where) const {
    if (!v.is_array())
      fail(where, "expected a list of integers, got " + jsonExcerpt(v));
    if (v.size() > limits::kMaxTensorRank)
      fail(where, "has " + std::to_string(v.size()) + " dimensions; at most " +
                      std::to_string(limits::kMaxTensorRank) + " are supported");
    std::vector<int64_t> shape;
    for (const json &e : v) {
      if (!e.is_number_integer() || e.get<int64_t>() <= 0)
        fail(where, "expected positive integers, got " + jsonExcerpt(v));
      shape.push_back(e.get<int64_t>());
    }
    if (!limits::checkedProduct(shape))
      fail(where, formatShape(shape) + " has more than 2^40 elements");
    return shape;
  }

private:
  std::string Path;
  unsigned Symbols;
};


/// A program section's tables. `section` is its JSON path: "" for the top
/// level (the step program), "vision" for the vision tower's.
///
/// "weights": ids unique (WeightById maps them to indices), static shapes,
/// checkpoint tensor names; an f8e4m3 weight needs `fp8Block` (the model's
/// weight_quantization block).
void readWeights(const ManifestReader &r, const json &object, const std::string &section,
                 const std::array<int64_t, 2> &fp8Block, std::vector<WeightSpec> &weights,
                 std::vector<int> &byId);
/// "buffers": ids unique, shapes of constants and the reader's symbols.
void readBuffers(const ManifestReader &r, const json &object, const std::string &section,
                 std::vector<BufferSpec> &buffers, std::vector<int> &byId);

/// Resolves one argument {kind: value} of a program entry at `where`, or fails.
using ArgResolver = std::function<ArgRef(const std::string &kind, const json &value, const std::string &where)>;

/// "program": each entry's kernel, its launch (generated kernels) or
/// cuBLASLt descriptor and decode variant (CUDA GEMMs), and its arguments
/// through `resolve` (`argKinds` lists the kinds it takes, for errors). Not
/// empty.
std::vector<ProgramEntry> readProgram(const ManifestReader &r, const json &object, const std::string &section,
                                      bool cuda, const std::string &argKinds, const ArgResolver &resolve);

} // namespace qwen::rt::manifest

#endif // QWEN_RT_MANIFEST_READER_H
