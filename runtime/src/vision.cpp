//===- vision.cpp - The artifact's vision program -------------------------===//
//
// Parses the manifest's "vision" section (docs/ARTIFACT.md) and runs it
// where the engine's Executor runs the step program (Executor::bindVision),
// with dims T = patches and R = merged rows. The CPU's runs the kernels of
// kernels.so, called as the step's are (args, dims, [begin, end)).
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/vision.h"

#include "manifest_reader.h"

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
uint64_t alignUp(uint64_t n) { return (n + 63) & ~uint64_t(63); }
} // namespace

std::optional<VisionProgramSpec> qwen::rt::parseVisionProgram(const Artifact &art) {
  const json &m = art.manifest();
  if (!m.contains("vision"))
    return std::nullopt;
  // The vision program's shapes use T (patches) and R (merged rows).
  manifest::ManifestReader r((std::filesystem::path(art.dir()) / "manifest.json").string(),
                             1u << SymT | 1u << SymR);
  const json &v = m.at("vision");
  VisionProgramSpec s;
  const json &c = r.field(v, "config", "vision");
  VisionGeometry &g = s.geometry;
  s.depth = r.positive(c, "depth", "vision.config");
  g.hiddenSize = r.positive(c, "hidden_size", "vision.config");
  g.numHeads = r.positive(c, "num_heads", "vision.config");
  g.inChannels = r.positive(c, "in_channels", "vision.config");
  g.patchSize = r.positive(c, "patch_size", "vision.config");
  g.temporalPatchSize = r.positive(c, "temporal_patch_size", "vision.config");
  g.spatialMergeSize = r.positive(c, "spatial_merge_size", "vision.config");
  g.outHiddenSize = r.positive(c, "out_hidden_size", "vision.config");
  g.numPositionEmbeddings = r.positive(c, "num_position_embeddings", "vision.config");
  const json &theta = r.field(c, "rope_theta", "vision.config");
  if (!theta.is_number() || theta.get<double>() <= 0)
    r.fail("vision.config.rope_theta", "expected a positive number, got " + jsonExcerpt(theta));
  g.ropeTheta = theta.get<double>();
  try {
    validateVisionGeometry(g);
  } catch (const Error &e) {
    r.fail("vision.config", e.what());
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
  const json &inputs = r.array(v, "inputs", "vision");
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string where = "vision.inputs[" + std::to_string(i) + "]";
    InputSpec in;
    in.name = r.str(inputs[i], "name", where);
    in.dtype = r.dtype(inputs[i], where);
    in.shape = r.symShape(r.field(inputs[i], "shape", where), where + ".shape");
    bool ok = false;
    for (const auto &[n, shape] : known)
      ok = ok || (n == in.name && formatShape(in.shape) == shape);
    const bool integerInput = in.name == "pos_indices" || in.name == "segment_bounds";
    if (!ok || in.dtype != (integerInput ? DType::I32 : DType::F32))
      r.fail(where, "unexpected input \"" + in.name + "\" " + dtypeName(in.dtype) + " " + formatShape(in.shape));
    for (const InputSpec &prev : s.inputs)
      if (prev.name == in.name)
        r.fail(where, "input \"" + in.name + "\" is declared twice");
    s.inputs.push_back(std::move(in));
  }
  if (s.inputs.size() != std::size(known))
    r.fail("vision.inputs", "expected the 6 inputs pixel_values, pos_indices, pos_weights, rope_cos, rope_sin, "
                            "segment_bounds");

  // The tables, in the step program's format; arguments name weights and
  // buffers by id, the bound program indexes them by position.
  std::vector<int> weightById, bufferById;
  // FP8 checkpoints: the tower's f8e4m3 weights use the model's block
  // (model.weight_quantization, checked when the artifact was read).
  std::array<int64_t, 2> fp8Block{0, 0};
  if (m.contains("model") && m.at("model").contains("weight_quantization")) {
    const json &block = m.at("model").at("weight_quantization").at("weight_block_size");
    fp8Block = {block.at(0).get<int64_t>(), block.at(1).get<int64_t>()};
  }
  manifest::readWeights(r, v, "vision", fp8Block, s.weights, weightById);
  manifest::readBuffers(r, v, "vision", s.buffers, bufferById);
  auto indexOf = [&](const std::vector<int> &byId, const json &value, const char *what, const std::string &aw) {
    int id = r.id(value, aw);
    if (size_t(id) >= byId.size() || byId[size_t(id)] < 0)
      r.fail(aw, std::string("references ") + what + " " + jsonExcerpt(value) + ", but no " + what +
                     " has that id");
    return byId[size_t(id)];
  };
  s.program = manifest::readProgram(
      r, v, "vision", art.isCuda(), "\"input\", \"weight\", \"buffer\"",
      [&](const std::string &kind, const json &value, const std::string &aw) {
        ArgRef ref;
        if (kind == "input") {
          ref.kind = ArgRef::Input;
          ref.index = -1;
          for (size_t k = 0; k < s.inputs.size(); ++k)
            if (value.is_string() && s.inputs[k].name == value.get<std::string>())
              ref.index = int(k);
          if (ref.index < 0)
            r.fail(aw, "references input " + jsonExcerpt(value) + ", which \"vision.inputs\" does not declare");
        } else if (kind == "weight") {
          ref.kind = ArgRef::Weight;
          ref.index = indexOf(weightById, value, "weight", aw);
        } else if (kind == "buffer") {
          ref.kind = ArgRef::Buffer;
          ref.index = indexOf(bufferById, value, "buffer", aw);
        } else {
          r.fail(aw, "unknown argument kind \"" + kind + "\" (expected input, weight or buffer)");
        }
        return ref;
      });

  const json &out = r.field(v, "output", "vision");
  const int ob = indexOf(bufferById, r.field(out, "buffer", "vision.output"), "buffer", "vision.output.buffer");
  s.outputBuffer = ob;
  const BufferSpec &outBuf = s.buffers[size_t(ob)];
  const std::string want = "[R, " + std::to_string(g.outHiddenSize) + "]";
  if (outBuf.dtype != DType::F32 || formatShape(outBuf.shape) != want)
    r.fail("vision.output", "the output buffer must be f32 " + want + ", got " + dtypeName(outBuf.dtype) + " " +
                                formatShape(outBuf.shape));
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
