//===- vision.cpp - The artifact's vision program -------------------------===//
//
// Parses the manifest's "vision" section (docs/ARTIFACT.md) and runs it
// where the engine's Executor runs the step program (Executor::bindVision),
// with dims T = patches and R = merged rows. The CPU's runs the kernels of
// kernels.so, called as the step's are (args, dims, [begin, end)).
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/vision.h"

#include "qwen_rt/error.h"
#include "qwen_rt/executor.h"
#include "qwen_rt/safetensors.h"
#include "qwen_rt/thread_pool.h"
#include "qwen_rt/weights.h"

#include <dlfcn.h>

#include <cstring>
#include <filesystem>
#include <optional>

using nlohmann::json;
using namespace qwen::rt;

namespace {
[[noreturn]] void bad(const std::string &where, const std::string &message) {
  throw Error("manifest.json: vision." + where + ": " + message);
}

const json &field(const json &object, const char *key, const std::string &where) {
  if (!object.is_object() || !object.contains(key))
    bad(where, std::string("missing \"") + key + "\"");
  return object.at(key);
}

int64_t integer(const json &object, const char *key, const std::string &where) {
  const json &v = field(object, key, where);
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    bad(where + "." + key, "expected a non-negative integer");
  return v.get<int64_t>();
}

DType dtypeOf(const json &object, const std::string &where) {
  const json &v = field(object, "dtype", where);
  std::optional<DType> d = v.is_string() ? parseDTypeName(v.get<std::string>()) : std::nullopt;
  if (!d)
    bad(where + ".dtype", "unknown dtype");
  return *d;
}

/// A shape of constants and the vision symbols T (patches), R (merged rows).
SymShape symShape(const json &shape, const std::string &where) {
  if (!shape.is_array())
    bad(where, "expected an array");
  SymShape out;
  for (const json &d : shape) {
    ShapeDim dim;
    if (d.is_string() && d == "T")
      dim.symbol = SymT;
    else if (d.is_string() && d == "R")
      dim.symbol = SymR;
    else if (d.is_number_integer() && d.get<int64_t>() > 0)
      dim.value = d.get<int64_t>();
    else
      bad(where, "expected \"T\", \"R\" or a positive size");
    out.push_back(dim);
  }
  return out;
}

uint64_t alignUp(uint64_t n) { return (n + 63) & ~uint64_t(63); }
} // namespace

std::optional<VisionProgramSpec> qwen::rt::parseVisionProgram(const Artifact &art) {
  const json &m = art.manifest();
  if (!m.contains("vision"))
    return std::nullopt;
  const json &v = m.at("vision");
  VisionProgramSpec s;
  const json &c = field(v, "config", "vision");
  VisionGeometry &g = s.geometry;
  s.depth = integer(c, "depth", "config");
  g.hiddenSize = integer(c, "hidden_size", "config");
  g.numHeads = integer(c, "num_heads", "config");
  g.inChannels = integer(c, "in_channels", "config");
  g.patchSize = integer(c, "patch_size", "config");
  g.temporalPatchSize = integer(c, "temporal_patch_size", "config");
  g.spatialMergeSize = integer(c, "spatial_merge_size", "config");
  g.outHiddenSize = integer(c, "out_hidden_size", "config");
  g.numPositionEmbeddings = integer(c, "num_position_embeddings", "config");
  const json &theta = field(c, "rope_theta", "config");
  if (!theta.is_number() || theta.get<double>() <= 0)
    bad("config.rope_theta", "expected a positive number");
  g.ropeTheta = theta.get<double>();
  try {
    validateVisionGeometry(g);
  } catch (const Error &e) {
    bad("config", e.what());
  }

  // The inputs the runtime fills (buildVisionInputs), in any order.
  const int64_t half = g.headDim() / 2;
  const std::pair<std::string, std::string> known[] = {
      {"pixel_values", "[T, " + std::to_string(g.patchRowSize()) + "]"},
      {"pos_indices", "[T, 4]"},
      {"pos_weights", "[T, 4]"},
      {"rope_cos", "[T, " + std::to_string(half) + "]"},
      {"rope_sin", "[T, " + std::to_string(half) + "]"},
      {"segment_bounds", "[T, 2]"}};
  const json &inputs = field(v, "inputs", "vision");
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string where = "inputs[" + std::to_string(i) + "]";
    InputSpec in;
    const json &name = field(inputs[i], "name", where);
    in.name = name.is_string() ? name.get<std::string>() : "";
    in.dtype = dtypeOf(inputs[i], where);
    in.shape = symShape(field(inputs[i], "shape", where), where + ".shape");
    bool ok = false;
    for (const auto &[n, shape] : known)
      ok = ok || (n == in.name && formatShape(in.shape) == shape);
    const bool integerInput = in.name == "pos_indices" || in.name == "segment_bounds";
    if (!ok || in.dtype != (integerInput ? DType::I32 : DType::F32))
      bad(where, "unexpected input \"" + in.name + "\" " + dtypeName(in.dtype) + " " + formatShape(in.shape));
    s.inputs.push_back(std::move(in));
  }
  if (s.inputs.size() != std::size(known))
    bad("inputs", "expected the 6 inputs pixel_values, pos_indices, pos_weights, rope_cos, rope_sin, segment_bounds");

  const json &weights = field(v, "weights", "vision");
  for (size_t i = 0; i < weights.size(); ++i) {
    std::string where = "weights[" + std::to_string(i) + "]";
    WeightSpec w;
    if (integer(weights[i], "id", where) != int64_t(i))
      bad(where + ".id", "vision weights are numbered 0, 1, ... in order");
    w.id = int(i);
    w.dtype = dtypeOf(weights[i], where);
    for (const json &d : field(weights[i], "shape", where)) {
      if (!d.is_number_integer() || d.get<int64_t>() <= 0)
        bad(where + ".shape", "expected positive sizes");
      w.shape.push_back(d.get<int64_t>());
    }
    for (const json &src : field(weights[i], "sources", where)) {
      if (!src.is_string())
        bad(where + ".sources", "expected tensor names");
      w.sources.push_back(src.get<std::string>());
    }
    if (w.shape.empty() || w.sources.empty())
      bad(where, "a weight needs a shape and a source");
    s.weights.push_back(std::move(w));
  }
  const json &buffers = field(v, "buffers", "vision");
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::string where = "buffers[" + std::to_string(i) + "]";
    BufferSpec b;
    if (integer(buffers[i], "id", where) != int64_t(i))
      bad(where + ".id", "vision buffers are numbered 0, 1, ... in order");
    b.id = int(i);
    b.dtype = dtypeOf(buffers[i], where);
    b.shape = symShape(field(buffers[i], "shape", where), where + ".shape");
    s.buffers.push_back(std::move(b));
  }
  const json &program = field(v, "program", "vision");
  if (!program.is_array() || program.empty())
    bad("program", "expected a non-empty array");
  for (size_t i = 0; i < program.size(); ++i) {
    std::string where = "program[" + std::to_string(i) + "]";
    ProgramEntry e;
    const json &kernel = field(program[i], "kernel", where);
    e.kernel = kernel.is_string() ? kernel.get<std::string>() : "";
    if (e.kernel.empty())
      bad(where + ".kernel", "expected a kernel name");
    // CUDA artifacts: a cuBLASLt GEMM (the merger's matmuls) or a generated
    // kernel with its block size, read as the step program's entries are.
    e.isGemm = art.isCuda() && program[i].contains("library");
    if (e.isGemm && program[i].at("library") != "cublaslt")
      bad(where + ".library", "unknown library (this runtime calls \"cublaslt\")");
    if (art.isCuda() && !e.isGemm) {
      ProgramEntry launch = parseLaunch(program[i].dump(), true, "manifest.json: vision." + where);
      e.blockThreads = launch.blockThreads;
      e.sharedBytes = launch.sharedBytes;
    }
    if (!e.isGemm)
      e.grid = symShape(field(program[i], "grid", where), where + ".grid");
    for (const json &a : field(program[i], "args", where)) {
      if (!a.is_object() || a.size() != 1)
        bad(where + ".args", "expected objects with one of \"input\", \"weight\", \"buffer\"");
      ArgRef ref;
      const std::string &kind = a.begin().key();
      const json &value = a.begin().value();
      if (kind == "input") {
        ref.kind = ArgRef::Input;
        ref.index = -1;
        for (size_t k = 0; k < s.inputs.size(); ++k)
          if (value.is_string() && s.inputs[k].name == value.get<std::string>())
            ref.index = int(k);
      } else if (kind == "weight" || kind == "buffer") {
        ref.kind = kind == "weight" ? ArgRef::Weight : ArgRef::Buffer;
        size_t limit = kind == "weight" ? s.weights.size() : s.buffers.size();
        ref.index = value.is_number_integer() && value.get<int64_t>() >= 0 &&
                            size_t(value.get<int64_t>()) < limit
                        ? int(value.get<int64_t>())
                        : -1;
      } else {
        ref.index = -1;
      }
      if (ref.index < 0)
        bad(where + ".args", "argument " + a.dump() + " names nothing the vision program declares");
      e.args.push_back(ref);
    }
    if (e.isGemm)
      e.gemm = parseGemm(field(program[i], "cublaslt", where).dump(), e.args.size(),
                         "manifest.json: vision." + where);
    s.program.push_back(std::move(e));
  }
  const json &out = field(v, "output", "vision");
  const int64_t ob = integer(out, "buffer", "output");
  if (size_t(ob) >= s.buffers.size())
    bad("output.buffer", "no buffer has this id");
  s.outputBuffer = int(ob);
  const BufferSpec &outBuf = s.buffers[size_t(ob)];
  const std::string want = "[R, " + std::to_string(g.outHiddenSize) + "]";
  if (outBuf.dtype != DType::F32 || formatShape(outBuf.shape) != want)
    bad("output", "the output buffer must be f32 " + want);
  return s;
}

namespace {
/// The vision program on the CPU: the kernels of the artifact's kernels.so
/// called as the step's are (args, dims, [begin, end)) on the thread pool,
/// over one host arena laid out per run.
class HostVisionProgram final : public BoundProgram {
public:
  HostVisionProgram(const Artifact &art, VisionProgramSpec spec, WeightStore weights, ThreadPool &pool)
      : Spec(std::move(spec)), Weights(std::move(weights)), Pool(pool) {
    const std::filesystem::path object = std::filesystem::path(art.dir()) / art.target().object;
    Library = dlopen(object.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!Library) {
      const char *message = dlerror();
      throw Error("cannot load kernel library " + object.string() + ": " + (message ? message : "dlopen failed"));
    }
    for (ProgramEntry &e : Spec.program) {
      e.fn = reinterpret_cast<KernelFn>(dlsym(Library, e.kernel.c_str()));
      if (!e.fn) {
        dlclose(Library);
        throw Error("kernel library " + object.string() + " has no vision kernel " + e.kernel);
      }
    }
  }
  ~HostVisionProgram() override { dlclose(Library); }

  const uint8_t *run(const std::vector<const void *> &inputs, const StepDims &dims, uint64_t outputBytes) override {
    // One arena: the inputs, then the buffers, each 64-byte aligned.
    std::vector<uint64_t> inputOffsets, bufferOffsets;
    uint64_t total = 0;
    for (const InputSpec &spec : Spec.inputs) {
      inputOffsets.push_back(total);
      total += alignUp(uint64_t(shapeProduct(spec.shape, dims)) * dtypeSize(spec.dtype));
    }
    for (const BufferSpec &spec : Spec.buffers) {
      bufferOffsets.push_back(total);
      total += alignUp(uint64_t(shapeProduct(spec.shape, dims)) * dtypeSize(spec.dtype));
    }
    if (total > Arena.size())
      Arena = HostBuffer(total, "the vision activations");
    uint8_t *base = Arena.data();
    for (size_t i = 0; i < Spec.inputs.size(); ++i)
      std::memcpy(base + inputOffsets[i], inputs[i],
                  uint64_t(shapeProduct(Spec.inputs[i].shape, dims)) * dtypeSize(Spec.inputs[i].dtype));
    const int64_t *d = dims.data();
    for (const ProgramEntry &e : Spec.program) {
      std::vector<void *> args;
      for (const ArgRef &a : e.args)
        args.push_back(a.kind == ArgRef::Input    ? base + inputOffsets[size_t(a.index)]
                       : a.kind == ArgRef::Weight ? Weights.data(size_t(a.index))
                                                  : base + bufferOffsets[size_t(a.index)]);
      const int64_t n = shapeProduct(e.grid, dims);
      if (n <= 0)
        continue;
      KernelFn fn = e.fn;
      void *const *argv = args.data();
      Pool.parallelFor(n, [fn, argv, d](int64_t begin, int64_t end) { fn(argv, d, begin, end); });
    }
    (void)outputBytes;
    return base + bufferOffsets[size_t(Spec.outputBuffer)];
  }

private:
  VisionProgramSpec Spec;
  WeightStore Weights;
  ThreadPool &Pool;
  void *Library = nullptr;
  HostBuffer Arena;
};
} // namespace

std::unique_ptr<BoundProgram> qwen::rt::bindHostVisionProgram(const Artifact &artifact, const VisionProgramSpec &spec,
                                                              WeightStore weights, ThreadPool &pool) {
  return std::make_unique<HostVisionProgram>(artifact, spec, std::move(weights), pool);
}

struct VisionEncoder::Impl {
  uint64_t weightBytes = 0;
  std::unique_ptr<BoundProgram> program;
};

VisionEncoder::VisionEncoder(const Artifact &art, const std::string &checkpointDir, ThreadPool &pool,
                             Executor &executor)
    : P(std::make_unique<Impl>()) {
  std::optional<VisionProgramSpec> spec = parseVisionProgram(art);
  if (!spec)
    throw Error("artifact " + art.dir() + " has no vision program: recompile the checkpoint without "
                "--no-vision (only Qwen3.5 checkpoints with a vision_config have one)");
  Spec = std::move(*spec);
  if (checkpointDir.empty())
    throw Error("the vision program needs the checkpoint's weights (no checkpoint folder)");
  WeightStore weights = WeightStore::bind(Spec.weights, SafetensorsArchive::openDir(checkpointDir), pool, false);
  P->weightBytes = weights.totalBytes();
  P->program = executor.bindVision(Spec, std::move(weights), pool);
}

VisionEncoder::~VisionEncoder() = default;

uint64_t VisionEncoder::weightBytes() const { return P->weightBytes; }

uint64_t qwen::rt::visionActivationBytes(const VisionProgramSpec &spec, int64_t patches) {
  const StepDims dims = {patches, 0, 0, patches / spec.geometry.mergeUnit()};
  uint64_t total = 0;
  for (const InputSpec &in : spec.inputs)
    total += alignUp(uint64_t(shapeProduct(in.shape, dims)) * dtypeSize(in.dtype));
  for (const BufferSpec &b : spec.buffers)
    total += alignUp(uint64_t(shapeProduct(b.shape, dims)) * dtypeSize(b.dtype));
  return total;
}

uint64_t VisionEncoder::activationBytes(int64_t patches) const {
  return visionActivationBytes(Spec, patches);
}

ImageEmbeddings VisionEncoder::encode(const std::vector<PixelValues> &images) {
  ImageEmbeddings result;
  result.width = Spec.geometry.outHiddenSize;
  if (images.empty())
    return result;
  VisionInputs in = buildVisionInputs(images, Spec.geometry);
  const StepDims dims = {in.patches, 0, 0, in.patches / Spec.geometry.mergeUnit()};
  std::vector<const void *> inputs;
  for (const InputSpec &spec : Spec.inputs) {
    const std::string &name = spec.name;
    inputs.push_back(name == "pixel_values"  ? static_cast<const void *>(in.pixels.data())
                     : name == "pos_indices" ? static_cast<const void *>(in.posIndices.data())
                     : name == "pos_weights" ? static_cast<const void *>(in.posWeights.data())
                     : name == "rope_cos"    ? static_cast<const void *>(in.ropeCos.data())
                     : name == "rope_sin"    ? static_cast<const void *>(in.ropeSin.data())
                                             : static_cast<const void *>(in.segmentBounds.data()));
  }
  const uint64_t outputBytes = uint64_t(dims[SymR] * result.width) * sizeof(float);
  const auto *out = reinterpret_cast<const float *>(P->program->run(inputs, dims, outputBytes));
  result.rows.assign(out, out + dims[SymR] * result.width);
  result.tokensPerImage = in.mergedTokens;
  return result;
}
