//===- artifact.cpp - Manifest parsing and kernel loading -----------------===//

#include "qwen_rt/artifact.h"

#include "manifest_reader.h"

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

const char *const manifest::kSymbolNames[NumSymbols] = {"T", "B", "P", "R"};
using manifest::kSymbolNames;
using manifest::ManifestReader;

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

ProgramEntry::Launchable parseLaunchable(std::string_view variantJson, const std::string &origin) {
  json variant = parseUntrustedJson(variantJson, origin);
  ProgramEntry::Launchable l;
  ManifestReader(origin).launchable(variant, "launch", l);
  return l;
}

//===----------------------------------------------------------------------===//
// Artifact
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// The tables of a program section (manifest_reader.h)
//===----------------------------------------------------------------------===//

namespace {
std::string sectionWhere(const std::string &section) { return section.empty() ? "top level" : section; }
std::string sectionPrefix(const std::string &section) { return section.empty() ? "" : section + "."; }

/// Records `id` of table entry `index` in `byId`; fails when it is taken or
/// out of range (ids stay below four times the table size plus 1024).
void recordId(const ManifestReader &r, int64_t id, size_t index, size_t tableSize, const char *what,
              const std::string &where, std::vector<int> &byId) {
  if (id < 0 || id >= int64_t(tableSize) * 4 + 1024)
    r.fail(where + ".id", std::string(what) + " id " + std::to_string(id) + " is out of range");
  if (size_t(id) >= byId.size())
    byId.resize(size_t(id) + 1, -1);
  if (byId[size_t(id)] >= 0)
    r.fail(where + ".id", std::string(what) + " id " + std::to_string(id) + " is used twice");
  byId[size_t(id)] = int(index);
}
} // namespace

void manifest::readWeights(const ManifestReader &r, const json &object, const std::string &section,
                           const std::array<int64_t, 2> &fp8Block, std::vector<WeightSpec> &weights,
                           std::vector<int> &byId) {
  const json &list = r.array(object, "weights", sectionWhere(section));
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = sectionPrefix(section) + "weights[" + std::to_string(i) + "]";
    WeightSpec w;
    int64_t id = r.integer(list[i], "id", where);
    recordId(r, id, weights.size(), list.size(), "weight", where, byId);
    w.id = int(id);
    w.fp8Block = fp8Block;
    w.dtype = r.dtype(list[i], where);
    if (w.dtype == DType::F8E4M3 && fp8Block[0] <= 0)
      r.fail(where + ".dtype", "an f8e4m3 weight needs model.weight_quantization (method fp8, weight_block_size)");
    w.shape = r.staticShape(r.field(list[i], "shape", where), where + ".shape");
    if (w.shape.empty())
      r.fail(where + ".shape", "a weight needs at least one dimension");
    const json &src = r.array(list[i], "sources", where);
    if (src.empty())
      r.fail(where + ".sources", "needs at least one checkpoint tensor name");
    for (const json &s : src) {
      if (!s.is_string())
        r.fail(where + ".sources", "expected tensor names, got " + jsonExcerpt(s));
      w.sources.push_back(s.get<std::string>());
    }
    weights.push_back(std::move(w));
  }
}

void manifest::readBuffers(const ManifestReader &r, const json &object, const std::string &section,
                           std::vector<BufferSpec> &buffers, std::vector<int> &byId) {
  const json &list = r.array(object, "buffers", sectionWhere(section));
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = sectionPrefix(section) + "buffers[" + std::to_string(i) + "]";
    BufferSpec b;
    int64_t id = r.integer(list[i], "id", where);
    recordId(r, id, buffers.size(), list.size(), "buffer", where, byId);
    b.id = int(id);
    b.dtype = r.dtype(list[i], where);
    b.shape = r.symShape(r.field(list[i], "shape", where), where + ".shape");
    buffers.push_back(std::move(b));
  }
}

std::vector<ProgramEntry> manifest::readProgram(const ManifestReader &r, const json &object,
                                                const std::string &section, bool cuda,
                                                const std::string &argKinds, const ArgResolver &resolve) {
  const json &list = r.array(object, "program", sectionWhere(section));
  if (list.empty())
    r.fail(sectionPrefix(section) + "program", "is empty");
  std::vector<ProgramEntry> program;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = sectionPrefix(section) + "program[" + std::to_string(i) + "]";
    ProgramEntry e;
    e.kernel = r.str(list[i], "kernel", where);
    if (!isIdentifier(e.kernel))
      r.fail(where + ".kernel", "\"" + e.kernel + "\" is not a valid C symbol name");
    where += " (kernel " + e.kernel + ")";
    e.isGemm = cuda && list[i].contains("library");
    if (e.isGemm && r.str(list[i], "library", where) != "cublaslt")
      r.fail(where + ".library", "unknown library \"" + list[i]["library"].get<std::string>() +
                                     "\" (this runtime calls \"cublaslt\")");
    if (!e.isGemm)
      r.launch(list[i], where, cuda, e);
    const json &args = r.array(list[i], "args", where);
    for (size_t j = 0; j < args.size(); ++j) {
      std::string aw = where + ".args[" + std::to_string(j) + "]";
      const json &a = args[j];
      if (!a.is_object() || a.size() != 1)
        r.fail(aw, "expected an object with one of " + argKinds + ", got " + jsonExcerpt(a));
      e.args.push_back(resolve(a.begin().key(), a.begin().value(), aw));
    }
    if (e.isGemm) {
      e.gemm = r.gemm(r.field(list[i], "cublaslt", where), e.args.size(), where + ".cublaslt");
      if (list[i].contains(schema::kDecode.data()))
        r.gemmDecode(list[i], where, e.args.size(), e.decode);
    }
    program.push_back(std::move(e));
  }
  return program;
}

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
  if (t.contains(schema::kGemmActivations.data())) {
    Target.gemmActivations = r.str(t, schema::kGemmActivations.data(), "target");
    if (Target.gemmActivations != "f32" && Target.gemmActivations != "bf16")
      r.fail("target.gemm_activations", "expected \"f32\" or \"bf16\", got \"" + Target.gemmActivations + "\"");
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

  // Weights, buffers and the program.
  manifest::readWeights(r, m, "", fp8Block, Weights, WeightById);
  manifest::readBuffers(r, m, "", Buffers, BufferById);
  const std::string argKinds = "\"input\", \"weight\", \"buffer\", \"kv\", \"state\"";
  Program = manifest::readProgram(r, m, "", isCuda(), argKinds, [&](const std::string &kind, const json &v,
                                                                    const std::string &aw) {
    ArgRef ref;
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
    return ref;
  });

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
