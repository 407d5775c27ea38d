//===- artifact.cpp - Manifest parsing and kernel loading -----------------===//

#include "qwen_rt/artifact.h"

#include "qwen_rt/cpu_features.h"
#include "qwen_rt/error.h"
#include "qwen_rt/json_input.h"
#include "qwen_rt/launch_schema.h"
#include "qwen_rt/limits.h"
#include "qwen_rt/safetensors.h"

#include <dlfcn.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;
namespace schema = qwen::launch_schema;

namespace qwen::rt {

static const char *const kSymbolNames[NumSymbols] = {"T", "B", "P", "R"};

int64_t shapeProduct(const SymShape &shape, const StepDims &dims) {
  int64_t n = 1;
  for (const ShapeDim &d : shape) {
    std::optional<int64_t> next = limits::checkedMul(n, d.eval(dims));
    if (!next || *next > limits::kMaxTensorElements)
      throw Error("the manifest shape " + formatShape(shape) + " with T = " + std::to_string(dims[SymT]) +
                  ", B = " + std::to_string(dims[SymB]) + ", P = " + std::to_string(dims[SymP]) +
                  ", R = " + std::to_string(dims[SymR]) + " would have more than 2^40 elements");
    n = *next;
  }
  return n;
}

std::string formatShape(const SymShape &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += shape[i].symbol >= 0 ? std::string(kSymbolNames[shape[i].symbol]) : std::to_string(shape[i].value);
  }
  return s + "]";
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t WeightSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

//===----------------------------------------------------------------------===//
// Manifest parsing helpers. Every error names the manifest and the JSON path.
//===----------------------------------------------------------------------===//

namespace {
bool isIdentifier(const std::string &s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      return false;
  return true;
}

class ManifestReader {
public:
  explicit ManifestReader(std::string path) : Path(std::move(path)) {}

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
        for (int k = 0; k < NumSymbols; ++k)
          if (s == kSymbolNames[k])
            d.symbol = k;
        if (d.symbol < 0)
          fail(where, "unknown symbol \"" + s + "\" (known symbols: T, B, P, R)");
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

  std::string Path;
};


uint64_t parseHash(const ManifestReader &r, const json &v, const std::string &where) {
  if (v.is_number_unsigned() || v.is_number_integer())
    return v.get<uint64_t>();
  if (!v.is_string())
    r.fail(where, "expected a hex string, got " + jsonExcerpt(v));
  std::string s = v.get<std::string>();
  if (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0)
    s = s.substr(2);
  if (s.empty() || s.size() > 16 || s.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    r.fail(where, "expected up to 16 hex digits, got " + jsonExcerpt(v));
  return std::stoull(s, nullptr, 16);
}

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
} // namespace

ProgramEntry parseLaunch(std::string_view entryJson, bool cuda, const std::string &origin) {
  json entry = parseUntrustedJson(entryJson, origin);
  ProgramEntry e;
  ManifestReader(origin).launch(entry, "launch", cuda, e);
  return e;
}

GemmSpec parseGemm(std::string_view gemmJson, size_t numArgs, const std::string &origin) {
  json gemm = parseUntrustedJson(gemmJson, origin);
  return ManifestReader(origin).gemm(gemm, numArgs, "cublaslt");
}

ProgramEntry::Launchable parseLaunchable(std::string_view variantJson, const std::string &origin) {
  json variant = parseUntrustedJson(variantJson, origin);
  ProgramEntry::Launchable l;
  ManifestReader(origin).launchable(variant, "launch", l);
  return l;
}

//===----------------------------------------------------------------------===//
// Artifact
//===----------------------------------------------------------------------===//

void Artifact::LibraryCloser::operator()(void *library) const { dlclose(library); }

Artifact::Artifact(Artifact &&) noexcept = default;
Artifact &Artifact::operator=(Artifact &&) noexcept = default;
Artifact::~Artifact() = default;

int Artifact::weightIndex(int id) const {
  return id >= 0 && size_t(id) < WeightById.size() ? WeightById[id] : -1;
}

int Artifact::bufferIndex(int id) const {
  return id >= 0 && size_t(id) < BufferById.size() ? BufferById[id] : -1;
}

Artifact Artifact::open(const std::string &dir) {
  if (!fs::is_directory(dir))
    throw Error("artifact folder " + dir + " does not exist (expected the output folder of qwen-compile)");
  std::string path = (fs::path(dir) / "manifest.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("artifact folder " + dir + " has no manifest.json; is it an artifact written by qwen-compile?");
  std::stringstream text;
  text << in.rdbuf();
  json m = parseUntrustedJson(text.str(), path);
  Artifact a;
  a.Dir = dir;
  try {
    a.parse(m);
  } catch (const json::exception &e) {
    // The reader checks types before it reads values; this is a safety net
    // so that no manifest can end the process with a raw library message.
    throw Error(path + ": unexpected JSON structure: " + e.what());
  }
  a.Manifest = std::move(m);
  return a;
}

void Artifact::parse(const json &m) {
  ManifestReader r((fs::path(Dir) / "manifest.json").string());
  if (!m.is_object())
    r.fail("top level", "expected a JSON object");

  // Format and version come first: a newer artifact may differ in everything else.
  std::string format = r.str(m, "format", "top level");
  if (format != "qwen-artifact")
    r.fail("format", "expected \"qwen-artifact\", got \"" + format + "\"; this is not a qwen-compile artifact");
  int64_t version = r.integer(m, "format_version", "top level");
  if (version != kArtifactFormatVersion)
    throw Error("artifact " + Dir + ": artifact format version " + std::to_string(version) +
                " is not supported by this runtime (expects " + std::to_string(kArtifactFormatVersion) +
                "); recompile with qwen-compile");
  if (m.contains("compiler") && m["compiler"].is_string())
    Compiler = m["compiler"].get<std::string>();

  // Target.
  const json &t = r.field(m, "target", "top level");
  Target.kind = r.str(t, "kind", "target");
  if (Target.kind != "cpu" && Target.kind != "cuda")
    r.fail("target.kind", "target \"" + Target.kind +
                              "\" is not supported by this runtime (it runs \"cpu\" and \"cuda\" artifacts)");
  Target.object = r.str(t, "object", "target");
  if (Target.kind == "cuda")
  {
    Target.arch = r.str(t, "arch", "target");
    if (t.contains("cubin"))
      Target.cubin = r.str(t, "cubin", "target");
    if (t.contains(schema::kProgrammaticLaunch.data()))
      Target.programmaticLaunch = r.boolean(t, schema::kProgrammaticLaunch.data(), "target");
  }
  if (t.contains("triple"))
    Target.triple = r.str(t, "triple", "target");
  if (t.contains("cpu"))
    Target.cpu = r.str(t, "cpu", "target");
  if (t.contains("features")) {
    for (const json &f : r.array(t, "features", "target")) {
      if (!f.is_string())
        r.fail("target.features", "expected strings, got " + jsonExcerpt(f));
      Target.features.push_back(f.get<std::string>());
    }
  }

  // Model facts the runtime needs.
  const json &model = r.field(m, "model", "top level");
  VocabSize = r.bounded(model, "vocab_size", "model", limits::kMaxVocabSize);
  MaxPositions = r.bounded(model, "max_position_embeddings", "model", limits::kMaxPositions);
  // A scaled RoPE (rope_scaling) extends the context beyond max_position_embeddings.
  if (model.contains("max_context"))
    MaxPositions = r.bounded(model, "max_context", "model", limits::kMaxPositions);

  // Checkpoint reference.
  const json &c = r.field(m, "checkpoint", "top level");
  Checkpoint.dir = r.str(c, "dir", "checkpoint");
  const json &files = r.array(c, "files", "checkpoint");
  for (size_t i = 0; i < files.size(); ++i) {
    std::string where = "checkpoint.files[" + std::to_string(i) + "]";
    CheckpointFileRef f;
    f.name = r.str(files[i], "name", where);
    int64_t size = r.integer(files[i], "size", where);
    if (size < 0)
      r.fail(where + ".size", "must not be negative");
    f.size = uint64_t(size);
    f.headerHash = parseHash(r, r.field(files[i], "header_fnv1a64", where), where + ".header_fnv1a64");
    Checkpoint.files.push_back(f);
  }
  if (c.contains("tokenizer") && !c["tokenizer"].is_null())
    Checkpoint.tokenizer = r.str(c, "tokenizer", "checkpoint");

  // KV cache.
  const json &kv = r.field(m, "kv_cache", "top level");
  KV.numLayers = r.bounded(kv, "num_layers", "kv_cache", limits::kMaxLayers);
  KV.numKvHeads = r.bounded(kv, "num_kv_heads", "kv_cache", limits::kMaxHeads);
  KV.headDim = r.bounded(kv, "head_dim", "kv_cache", limits::kMaxHeadDim);
  KV.pageSize = r.bounded(kv, "page_size", "kv_cache", limits::kMaxPageSize);
  KV.dtype = r.dtype(kv, "kv_cache");

  // Linear-attention state (hybrid models only).
  if (m.contains("linear_state")) {
    const json &ls = r.field(m, "linear_state", "top level");
    State.numLayers = r.bounded(ls, "num_layers", "linear_state", limits::kMaxLayers);
    State.convChannels = r.bounded(ls, "conv_channels", "linear_state", limits::kMaxModelDim);
    State.convWindow = r.bounded(ls, "conv_window", "linear_state", limits::kMaxConvKernel);
    State.numHeads = r.bounded(ls, "num_heads", "linear_state", limits::kMaxHeads);
    State.keyDim = r.bounded(ls, "key_dim", "linear_state", limits::kMaxHeadDim);
    State.valueDim = r.bounded(ls, "value_dim", "linear_state", limits::kMaxHeadDim);
    if (r.str(ls, "conv_dtype", "linear_state") != "f32" || r.str(ls, "recurrent_dtype", "linear_state") != "f32")
      r.fail("linear_state", "this runtime keeps conv and recurrent state in f32");
  }

  // Symbols: the kernel ABI fixes their order.
  const json &syms = r.array(m, "symbols", "top level");
  std::vector<std::string> expected = {"T", "B", "P", "R"};
  if (syms != json(expected))
    r.fail("symbols", "expected [\"T\", \"B\", \"P\", \"R\"] (the order of dims[] in the kernel ABI), got " +
                          jsonExcerpt(syms));

  // Inputs: the runtime fills exactly these, so names and shapes are fixed.
  static const std::pair<const char *, const char *> kKnownInputs[] = {
      {"tokens", "[T]"},         {"positions", "[T]"},          {"token_seq", "[T]"},
      {"block_table", "[B, P]"}, {"logit_rows", "[R]"},         {"mrope_positions", "[T, 3]"},
      {"state_slots", "[B]"},    {"image_rows", "[T]"},         {"image_embeds", "[T, H]"}};
  const json &inputs = r.array(m, "inputs", "top level");
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string where = "inputs[" + std::to_string(i) + "]";
    InputSpec in;
    in.name = r.str(inputs[i], "name", where);
    in.dtype = r.dtype(inputs[i], where);
    in.shape = r.symShape(r.field(inputs[i], "shape", where), where + ".shape");
    const char *want = nullptr;
    for (auto &[name, shape] : kKnownInputs)
      if (in.name == name)
        want = shape;
    if (!want)
      r.fail(where, "unknown input \"" + in.name + "\" (the runtime provides tokens, positions, token_seq, "
                                                   "block_table, logit_rows, mrope_positions, state_slots, "
                                                   "image_rows and image_embeds)");
    if (in.name == "state_slots" && !State.present())
      r.fail(where, "input \"state_slots\" needs a \"linear_state\" section");
    // image_embeds: the vision tower's f32 rows, as wide as the model.
    const bool image = in.name == "image_embeds";
    std::string wantShape = want;
    if (image)
      wantShape = "[T, " + std::to_string(model.value("hidden_size", int64_t(0))) + "]";
    if (in.dtype != (image ? DType::F32 : DType::I32))
      r.fail(where, "input \"" + in.name + "\" must be " + (image ? "f32" : "i32") + ", got " + dtypeName(in.dtype));
    if (formatShape(in.shape) != wantShape)
      r.fail(where, "input \"" + in.name + "\" must have shape " + wantShape + ", got " + formatShape(in.shape));
    if ((in.name == "image_rows" || image) && !model.contains("vision"))
      r.fail(where, "input \"" + in.name + "\" needs a \"model.vision\" section");
    for (const InputSpec &prev : Inputs)
      if (prev.name == in.name)
        r.fail(where, "input \"" + in.name + "\" is declared twice");
    Inputs.push_back(std::move(in));
  }

  // FP8 block-wise checkpoints: the block of one weight_scale_inv entry.
  std::array<int64_t, 2> fp8Block{0, 0};
  if (model.contains("weight_quantization")) {
    const json &q = r.field(model, "weight_quantization", "model");
    if (r.str(q, "method", "model.weight_quantization") != "fp8")
      r.fail("model.weight_quantization.method", "only \"fp8\" (block-wise float8_e4m3fn) is supported");
    const json &block = r.array(q, "weight_block_size", "model.weight_quantization");
    if (block.size() != 2 || !block[0].is_number_integer() || !block[1].is_number_integer() ||
        block[0].get<int64_t>() <= 0 || block[1].get<int64_t>() <= 0)
      r.fail("model.weight_quantization.weight_block_size", "expected two positive integers");
    fp8Block = {block[0].get<int64_t>(), block[1].get<int64_t>()};
  }

  // Weights.
  const json &weights = r.array(m, "weights", "top level");
  for (size_t i = 0; i < weights.size(); ++i) {
    std::string where = "weights[" + std::to_string(i) + "]";
    WeightSpec w;
    int64_t id = r.integer(weights[i], "id", where);
    if (id < 0 || id >= int64_t(weights.size()) * 4 + 1024)
      r.fail(where + ".id", "weight id " + std::to_string(id) + " is out of range");
    w.id = int(id);
    w.fp8Block = fp8Block;
    w.dtype = r.dtype(weights[i], where);
    if (w.dtype == DType::F8E4M3 && fp8Block[0] <= 0)
      r.fail(where + ".dtype", "an f8e4m3 weight needs model.weight_quantization (method fp8, weight_block_size)");
    w.shape = r.staticShape(r.field(weights[i], "shape", where), where + ".shape");
    if (w.shape.empty())
      r.fail(where + ".shape", "a weight needs at least one dimension");
    const json &src = r.array(weights[i], "sources", where);
    if (src.empty())
      r.fail(where + ".sources", "needs at least one checkpoint tensor name");
    for (const json &s : src) {
      if (!s.is_string())
        r.fail(where + ".sources", "expected tensor names, got " + jsonExcerpt(s));
      w.sources.push_back(s.get<std::string>());
    }
    if (size_t(w.id) >= WeightById.size())
      WeightById.resize(w.id + 1, -1);
    if (WeightById[w.id] >= 0)
      r.fail(where + ".id", "weight id " + std::to_string(w.id) + " is used twice");
    WeightById[w.id] = int(Weights.size());
    Weights.push_back(std::move(w));
  }

  // Buffers.
  const json &buffers = r.array(m, "buffers", "top level");
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::string where = "buffers[" + std::to_string(i) + "]";
    BufferSpec b;
    int64_t id = r.integer(buffers[i], "id", where);
    if (id < 0 || id >= int64_t(buffers.size()) * 4 + 1024)
      r.fail(where + ".id", "buffer id " + std::to_string(id) + " is out of range");
    b.id = int(id);
    b.dtype = r.dtype(buffers[i], where);
    b.shape = r.symShape(r.field(buffers[i], "shape", where), where + ".shape");
    if (size_t(b.id) >= BufferById.size())
      BufferById.resize(b.id + 1, -1);
    if (BufferById[b.id] >= 0)
      r.fail(where + ".id", "buffer id " + std::to_string(b.id) + " is used twice");
    BufferById[b.id] = int(Buffers.size());
    Buffers.push_back(std::move(b));
  }

  // Program.
  const json &program = r.array(m, "program", "top level");
  if (program.empty())
    r.fail("program", "is empty");
  for (size_t i = 0; i < program.size(); ++i) {
    std::string where = "program[" + std::to_string(i) + "]";
    ProgramEntry e;
    e.kernel = r.str(program[i], "kernel", where);
    if (!isIdentifier(e.kernel))
      r.fail(where + ".kernel", "\"" + e.kernel + "\" is not a valid C symbol name");
    where += " (kernel " + e.kernel + ")";
    e.isGemm = isCuda() && program[i].contains("library");
    if (e.isGemm && r.str(program[i], "library", where) != "cublaslt")
      r.fail(where + ".library", "unknown library \"" + program[i]["library"].get<std::string>() +
                                     "\" (this runtime calls \"cublaslt\")");
    if (!e.isGemm)
      r.launch(program[i], where, isCuda(), e);
    const json &args = r.array(program[i], "args", where);
    for (size_t j = 0; j < args.size(); ++j) {
      std::string aw = where + ".args[" + std::to_string(j) + "]";
      const json &a = args[j];
      if (!a.is_object() || a.size() != 1)
        r.fail(aw, "expected an object with one of \"input\", \"weight\", \"buffer\", \"kv\", \"state\", got " +
                       jsonExcerpt(a));
      ArgRef ref;
      const std::string &kind = a.begin().key();
      const json &v = a.begin().value();
      if (kind == "input") {
        ref.kind = ArgRef::Input;
        if (!v.is_string())
          r.fail(aw, "input name must be a string, got " + jsonExcerpt(v));
        ref.index = -1;
        for (size_t k = 0; k < Inputs.size(); ++k)
          if (Inputs[k].name == v.get<std::string>())
            ref.index = int(k);
        if (ref.index < 0)
          r.fail(aw, "references input " + jsonExcerpt(v) + ", which \"inputs\" does not declare");
      } else if (kind == "weight") {
        ref.kind = ArgRef::Weight;
        ref.index = r.id(v, aw);
        if (weightIndex(ref.index) < 0)
          r.fail(aw, "references weight " + jsonExcerpt(v) + ", but no weight has that id (" +
                         std::to_string(Weights.size()) + " weights declared)");
      } else if (kind == "buffer") {
        ref.kind = ArgRef::Buffer;
        ref.index = r.id(v, aw);
        if (bufferIndex(ref.index) < 0)
          r.fail(aw, "references buffer " + jsonExcerpt(v) + ", but no buffer has that id (" +
                         std::to_string(Buffers.size()) + " buffers declared)");
      } else if (kind == "kv") {
        ref.kind = ArgRef::KV;
        if (v == "keys")
          ref.index = 0;
        else if (v == "values")
          ref.index = 1;
        else
          r.fail(aw, "kv must be \"keys\" or \"values\", got " + jsonExcerpt(v));
      } else if (kind == "state") {
        ref.kind = ArgRef::State;
        if (!State.present())
          r.fail(aw, "references the linear-attention state, but the manifest has no \"linear_state\"");
        if (v == "conv")
          ref.index = 0;
        else if (v == "recurrent")
          ref.index = 1;
        else
          r.fail(aw, "state must be \"conv\" or \"recurrent\", got " + jsonExcerpt(v));
      } else {
        r.fail(aw, "unknown argument kind \"" + kind + "\" (expected input, weight, buffer, kv or state)");
      }
      e.args.push_back(ref);
    }
    if (e.isGemm) {
      e.gemm = r.gemm(r.field(program[i], "cublaslt", where), e.args.size(), where + ".cublaslt");
      if (program[i].contains(schema::kDecode.data()))
        r.gemmDecode(program[i], where, e.args.size(), e.decode);
    }
    Program.push_back(std::move(e));
  }

  // The generated samplers of CUDA artifacts: greedy, and the top-k candidates.
  if (isCuda() && m.contains("sampler")) {
    const json &sampler = r.field(m, "sampler", "top level");
    auto method = [&](const char *name, ProgramEntry::Launchable &e) {
      if (!sampler.contains(name))
        return false;
      r.launchable(r.field(sampler, name, "sampler"), std::string("sampler.") + name, e);
      return true;
    };
    method("argmax", Argmax);
    if (method("topk", TopK))
      TopKCount = r.positive(r.field(sampler, "topk", "sampler"), "count", "sampler.topk");
  }

  // Output: the logits [R, vocab_size] f32, or (kind "hidden_states") the
  // final hidden states [R, hidden_size] f32.
  const json &out = r.field(m, "output", "top level");
  int ob = r.id(r.field(out, "buffer", "output"), "output.buffer");
  if (bufferIndex(ob) < 0)
    r.fail("output.buffer", "no buffer has id " + std::to_string(ob));
  OutputBuffer = int(ob);
  std::string kind = out.contains("kind") ? r.str(out, "kind", "output") : "logits";
  if (kind != "logits" && kind != "hidden_states")
    r.fail("output.kind", "expected \"logits\" or \"hidden_states\", got \"" + kind + "\"");
  HiddenStatesOutput = kind == "hidden_states";
  OutputWidth = HiddenStatesOutput ? r.positive(model, "hidden_size", "model") : VocabSize;
  const BufferSpec &outBuf = Buffers[bufferIndex(OutputBuffer)];
  std::string wantShape = "[R, " + std::to_string(OutputWidth) + "]";
  if (outBuf.dtype != DType::F32 || formatShape(outBuf.shape) != wantShape)
    r.fail("output", "the output buffer must be f32 " + wantShape + ", but buffer " + std::to_string(ob) + " is " +
                         dtypeName(outBuf.dtype) + " " + formatShape(outBuf.shape));
}

//===----------------------------------------------------------------------===//
// Host CPU checks and kernel loading
//===----------------------------------------------------------------------===//

void Artifact::loadKernels() {
  if (Library)
    return;
  if (isCuda())
    throw Error("artifact " + Dir + " holds CUDA kernels (" + Target.arch + "); they run on a GPU, not on the host");
  std::vector<std::string> missing = missingCpuFeatures(Target.features);
  if (!missing.empty()) {
    std::string list;
    for (const std::string &f : missing)
      list += (list.empty() ? "" : ", ") + f;
    throw Error("artifact " + Dir + " was compiled for CPU " + (Target.cpu.empty() ? "?" : Target.cpu) +
                " but this CPU lacks " + list + "; recompile it on this machine (qwen-compile --cpu=native, the default) or with --cpu=portable");
  }
#if defined(__x86_64__)
  if (!Target.triple.empty() && Target.triple.rfind("x86_64", 0) != 0)
    throw Error("artifact " + Dir + " targets " + Target.triple + ", but this runtime runs on x86_64");
#endif

  fs::path object = fs::path(Dir) / Target.object;
  if (!fs::exists(object))
    throw Error("artifact " + Dir + " has no kernel library " + Target.object +
                " (named by target.object in manifest.json); the artifact is incomplete, recompile with qwen-compile");
  void *lib = dlopen(object.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *msg = dlerror();
    throw Error("cannot load kernel library " + object.string() + ": " + (msg ? msg : "unknown dlopen error"));
  }
  auto closeAndThrow = [&](const std::string &message) {
    dlclose(lib);
    throw Error(message);
  };
  auto abi = reinterpret_cast<int64_t (*)()>(dlsym(lib, "qwen_artifact_abi_version"));
  if (!abi)
    closeAndThrow("kernel library " + object.string() +
                  " does not export qwen_artifact_abi_version(); it was not written by qwen-compile");
  if (int64_t v = abi(); v != kKernelAbiVersion)
    closeAndThrow("kernel library " + object.string() + " has kernel ABI version " + std::to_string(v) +
                  ", but this runtime expects " + std::to_string(kKernelAbiVersion) + "; recompile with qwen-compile");
  for (size_t i = 0; i < Program.size(); ++i) {
    ProgramEntry &e = Program[i];
    e.fn = reinterpret_cast<KernelFn>(dlsym(lib, e.kernel.c_str()));
    if (!e.fn)
      closeAndThrow("kernel library " + object.string() + " has no kernel \"" + e.kernel + "\" used by program[" +
                    std::to_string(i) + "]; the manifest and kernels.so do not belong together");
  }
  Library.reset(lib);
}

//===----------------------------------------------------------------------===//
// Checkpoint identity
//===----------------------------------------------------------------------===//

std::string Artifact::resolveCheckpointDir(const std::string &override) const {
  if (!override.empty())
    return override;
  if (Checkpoint.dir.empty())
    return ""; // compiled from config.json alone
  fs::path p(Checkpoint.dir);
  if (p.is_relative())
    p = fs::path(Dir) / p;
  return p.lexically_normal().string();
}

void Artifact::verifyCheckpoint(const std::string &checkpointDir) const {
  if (checkpointDir.empty())
    throw Error("artifact " + Dir + " was compiled without a checkpoint (from config.json alone); pass --checkpoint "
                "DIR with a checkpoint folder of this model, or --random-weights for a benchmark");
  if (!fs::is_directory(checkpointDir))
    throw Error("checkpoint folder " + checkpointDir + " " + (fs::exists(checkpointDir) ? "is not a folder" : "does not exist") +
                " (the artifact was compiled against " + Checkpoint.dir +
                "); pass --checkpoint DIR with the checkpoint's folder, or --random-weights for a benchmark");
  for (const CheckpointFileRef &f : Checkpoint.files) {
    fs::path p = fs::path(checkpointDir) / f.name;
    if (!fs::exists(p))
      throw Error("checkpoint file " + f.name + " is missing from " + checkpointDir +
                  " (the artifact was compiled against " + Checkpoint.dir + "); pass --checkpoint DIR with the right folder");
    SafetensorsFileInfo info = probeSafetensorsFile(p.string());
    if (info.size != f.size || info.headerHash != f.headerHash)
      throw Error("checkpoint file " + p.string() + " changed since compilation: it has " + std::to_string(info.size) +
                  " bytes and header hash " + hex64(info.headerHash) + ", the artifact expects " +
                  std::to_string(f.size) + " bytes and header hash " + hex64(f.headerHash) +
                  "; recompile with qwen-compile, or pass --checkpoint with the original checkpoint");
  }
}

} // namespace qwen::rt
