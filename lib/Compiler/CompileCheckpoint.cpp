//===- CompileCheckpoint.cpp - HF checkpoint -> compiled module -----------===//
#include "qwen/Compiler/CompileCheckpoint.h"
#include "qwen/Compiler/QuantizeCheckpoint.h"

#include "qwen/Dialect/QTF/IR/QTF.h"
#include "qwen/Compiler/Registration.h"
#include "qwen/Target/CPU/ArtifactWriter.h"
#include "qwen/Target/CPU/CpuTarget.h"
#include "qwen/Target/CUDA/ArtifactWriter.h"
#include "qwen/Models/Qwen3/Qwen3Builder.h"
#include "qwen/Models/Qwen3/Qwen3Config.h"
#include "qwen/Models/Qwen3/Qwen3VisionBuilder.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"

#include "qwen_rt/error.h"
#include "qwen_rt/limits.h"
#include "qwen_rt/safetensors.h"
#include "qwen_rt/weights.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <map>
#include <optional>

using namespace mlir;

namespace qwen {

/// The folder of an artifact that holds its --weight-dtype=fp8 checkpoint.
static constexpr const char *kQuantizedCheckpointName = "checkpoint";

static llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Error verifyCompileCheckpointOptions(const CompileCheckpointOptions &options) {
  if (options.kvDtype != "f32" && options.kvDtype != "bf16" && options.kvDtype != "f16")
    return error("unknown --kv-dtype '" + options.kvDtype + "' (f32, bf16, f16)");
  if (options.pageSize <= 0 || options.pageSize > limits::kMaxPageSize)
    return error("--page-size must be in [1, " + llvm::Twine(limits::kMaxPageSize) + "]");
  if (options.vectorWidth != 0 && options.vectorWidth != 4 && options.vectorWidth != 8 &&
      options.vectorWidth != 16)
    return error("--vector-width must be 4, 8 or 16");
  if (options.bf16Activations != "auto" && options.bf16Activations != "off" &&
      options.bf16Activations != "split" && options.bf16Activations != "round")
    return error("unknown --bf16-activations '" + options.bf16Activations +
                 "' (auto, off, split, round)");
  if (options.gpuAttention != "simt" && options.gpuAttention != "mma")
    return error("unknown --gpu-attention '" + options.gpuAttention + "' (simt, mma)");
  if (options.gpuGemv != "cublaslt" && options.gpuGemv != "generated")
    return error("unknown --gpu-gemv '" + options.gpuGemv + "' (cublaslt, generated)");
  if (options.gpuGemv != "cublaslt" && options.target != CompileTarget::CUDA)
    return error("--gpu-gemv is a --target=cuda option");
  if (!options.weightDtype.empty() && options.weightDtype != "fp8")
    return error("unknown --weight-dtype '" + options.weightDtype +
                 "' (fp8: block-wise float8_e4m3fn, 128 x 128 blocks)");
  return llvm::Error::success();
}

llvm::json::Object describeModel(const models::Qwen3Config &config) {
  llvm::json::Array eos;
  for (int64_t id : config.eosTokenIds)
    eos.push_back(id);
  llvm::json::Object model{{"family", config.modelType},
                           {"num_experts", config.numExperts},
                           {"num_experts_per_tok", config.numExpertsPerToken},
                           {"vocab_size", config.vocabSize},
                           {"hidden_size", config.hiddenSize},
                           {"intermediate_size", config.intermediateSize},
                           {"num_layers", config.numLayers},
                           {"num_attention_heads", config.numHeads},
                           {"num_kv_heads", config.numKVHeads},
                           {"head_dim", config.headDim},
                           {"max_position_embeddings", config.maxPositionEmbeddings},
                           {"max_context", config.maxContext()},
                           {"rope_type", config.ropeScaling.type},
                           {"tie_word_embeddings", config.tieWordEmbeddings},
                           {"weight_dtype", config.weightDType},
                           {"activation_dtype", "f32"},
                           {"bos_token_id", config.bosTokenId},
                           {"eos_token_ids", std::move(eos)}};
  if (config.vision)
    model["vision"] = llvm::json::Object{{"image_token_id", config.imageTokenId},
                                         {"vision_start_token_id", config.visionStartTokenId},
                                         {"vision_end_token_id", config.visionEndTokenId},
                                         {"spatial_merge_size", config.spatialMergeSize}};
  if (config.quantization.isFp8())
    model["weight_quantization"] = llvm::json::Object{
        {"method", "fp8"},
        {"weight_block_size",
         llvm::json::Array{config.quantization.fp8Block[0], config.quantization.fp8Block[1]}}};
  return model;
}

//===----------------------------------------------------------------------===//
// The checkpoint
//===----------------------------------------------------------------------===//

namespace {
/// Where the model comes from: config.json and, when compiling from a
/// checkpoint folder, its safetensors files.
struct CheckpointInput {
  std::string configPath, dir; ///< dir: absolute, "" for a config.json alone
};

llvm::Expected<CheckpointInput> locateInput(llvm::StringRef input) {
  CheckpointInput located{input.str(), ""};
  if (llvm::sys::fs::is_directory(input)) {
    llvm::SmallString<256> dir(input);
    llvm::sys::fs::make_absolute(dir);
    llvm::sys::path::remove_dots(dir, true);
    located.dir = dir.str().str();
    llvm::sys::path::append(dir, "config.json");
    located.configPath = dir.str().str();
  } else if (!llvm::sys::fs::exists(input)) {
    return error("input '" + input + "' does not exist");
  }
  return located;
}

/// Opens the files the runtime will read (the index's shards,
/// model.safetensors, or the only .safetensors file), records them with
/// their header hashes (so the runtime notices a checkpoint changed after
/// compilation) and scans them for NaN and infinite values.
llvm::Error openCheckpoint(const CompileCheckpointOptions &options, const std::string &dir,
                           std::optional<rt::SafetensorsArchive> &archive,
                           target::ArtifactOptions &artifact) {
  try {
    archive.emplace(rt::SafetensorsArchive::openDir(dir));
  } catch (const rt::Error &e) {
    return error(e.what());
  }
  for (const rt::SafetensorsFileInfo &info : archive->files())
    artifact.checkpointFiles.push_back({info.name, info.size, info.headerHash});
  // NaN or infinite weights make every logit garbage without an error.
  // Scanned once here (one sequential read of the checkpoint) rather than at
  // every load, where weights are mapped without being read.
  if (options.scanWeights && options.report)
    for (const std::string &name : archive->names()) {
      rt::NonFiniteValues bad = rt::findNonFinite(archive->get(name));
      if (bad.count)
        options.report("warning", "checkpoint tensor '" + name + "' has " + llvm::Twine(bad.count) +
                                      " NaN or infinite value" + (bad.count == 1 ? "" : "s") +
                                      " (the first at flat index " + llvm::Twine(bad.firstIndex) + ")");
    }
  if (llvm::sys::fs::exists(dir + "/tokenizer.json"))
    artifact.tokenizer = "tokenizer.json";
  return llvm::Error::success();
}

/// Checks the graph's weights against the checkpoint with the rules the
/// runtime binds them by, so a missing or mis-shaped tensor is reported by
/// the compiler, not at the first load; notes the tensors the text model
/// leaves unused.
llvm::Error checkWeights(const CompileCheckpointOptions &options, ModuleOp module,
                         const models::Qwen3Config &config, const rt::SafetensorsArchive &archive) {
  std::string problem;
  llvm::StringSet<> used;
  module->walk([&](qtf::WeightOp weight) {
    if (!problem.empty())
      return;
    auto type = weight.getResult().getType();
    rt::WeightSpec spec;
    Type element = type.getElementType();
    spec.dtype = element.isF32()                   ? rt::DType::F32
                 : element.isF16()                 ? rt::DType::F16
                 : isa<Float8E4M3FNType>(element) ? rt::DType::F8E4M3
                                                   : rt::DType::BF16;
    spec.shape.assign(type.getShape().begin(), type.getShape().end());
    spec.fp8Block = config.quantization.fp8Block;
    for (Attribute source : weight.getSources()) {
      spec.sources.push_back(cast<StringAttr>(source).str());
      std::string tensor = rt::parseWeightSource(spec.sources.back()).tensor;
      used.insert(tensor);
      used.insert(tensor + "_scale_inv"); // FP8 block scales, bound with their weight
    }
    try {
      rt::resolveWeightSources(archive, spec, "; the shapes follow from config.json");
    } catch (const rt::Error &e) {
      problem = e.what();
    }
  });
  if (!problem.empty())
    return error(problem);
  if (!options.report)
    return llvm::Error::success();
  // Multimodal checkpoints also hold the vision tower and the MTP head,
  // which the text model does not use.
  std::map<std::string, int> skipped;
  for (const std::string &name : archive.names())
    if (!used.contains(name))
      ++skipped[llvm::StringRef(name).starts_with("mtp.")            ? "mtp.*"
                : llvm::StringRef(name).starts_with("model.visual.") ? "model.visual.*"
                                                                     : "other"];
  for (const auto &[group, count] : skipped)
    options.report("note", llvm::Twine(count) + " checkpoint tensor" + (count == 1 ? "" : "s") + " (" + group +
                               ") not used by the text model" +
                               (group == "model.visual.*" ? "; compiled without the vision program" : ""));
  return llvm::Error::success();
}
} // namespace

//===----------------------------------------------------------------------===//
// Compilation
//===----------------------------------------------------------------------===//

namespace {
/// The tower of vision_config as @vision (Qwen3VisionBuilder), and the
/// language model's model.vision pointing at it. Under Vision::Auto a
/// checkpoint without vision_config, or whose weights lack the tower (saved
/// by a text-only class), compiles the text model alone.
llvm::Error addVisionProgram(ModuleOp module, const CompileCheckpointOptions &options,
                             llvm::StringRef configPath, llvm::StringRef configText,
                             const models::Qwen3Config &config,
                             const std::optional<rt::SafetensorsArchive> &archive,
                             target::ArtifactOptions &artifact) {
  using Vision = CompileCheckpointOptions::Vision;
  const bool required = options.vision == Vision::On;
  llvm::Expected<std::optional<models::VisionConfig>> vision =
      models::parseVisionConfig(configText, configPath, config.weightDType);
  if (!vision)
    return vision.takeError();
  if (!*vision) {
    if (required)
      return error("--vision: " + configPath.str() +
                   " has no vision_config (a text-only model has no vision encoder)");
    return llvm::Error::success();
  }
  const std::string probe = (*vision)->prefix + "patch_embed.proj.weight";
  if (archive && !archive->find(probe)) {
    if (required)
      return error("--vision: the checkpoint has no " + probe +
                   " (saved by a text-only class without the vision tower)");
    if (options.report)
      options.report("note", "the checkpoint has a vision_config but no " + probe +
                                 ": compiled without the vision program (images need --image-embeds)");
    return llvm::Error::success();
  }
  models::VisionConfig &v = **vision;
  // FP8 checkpoints: the tower's quantized linears stay fp8, as the text model's.
  v.quantization = config.quantization;
  if (archive)
    v.hasTensor = [&archive](const std::string &name) { return archive->find(name) != nullptr; };
  if (v.outHiddenSize != config.hiddenSize)
    return error("vision_config.out_hidden_size " + llvm::Twine(v.outHiddenSize) +
                 " is not the language model's hidden_size " + llvm::Twine(config.hiddenSize) +
                 ": the vision tower's embeddings cannot replace the image tokens' (pass --no-vision to "
                 "compile the text model alone)");
  models::buildQwen3VisionGraph(module, v);
  artifact.vision = llvm::json::Object{
      {"depth", v.depth},
      {"hidden_size", v.hiddenSize},
      {"num_heads", v.numHeads},
      {"intermediate_size", v.intermediateSize},
      {"in_channels", v.inChannels},
      {"patch_size", v.patchSize},
      {"temporal_patch_size", v.temporalPatchSize},
      {"spatial_merge_size", v.spatialMergeSize},
      {"out_hidden_size", v.outHiddenSize},
      {"num_position_embeddings", v.numPositionEmbeddings},
      {"rope_theta", v.ropeTheta}};
  // The language model's image side names the program that feeds it.
  if (llvm::json::Object *lm = artifact.model.getObject("vision"))
    (*lm)["encoder"] = "vision";
  return llvm::Error::success();
}
} // namespace

CompiledModel::CompiledModel() {
  DialectRegistry registry;
  registerAllDialects(registry);
  codegen::gpu::registerGpuCodegenDialects(registry);
  Context = std::make_unique<MLIRContext>(registry);
  Context->loadAllAvailableDialects();
}

llvm::Expected<std::unique_ptr<CompiledModel>>
compileCheckpoint(const CompileCheckpointOptions &options) {
  if (llvm::Error invalid = verifyCompileCheckpointOptions(options))
    return std::move(invalid);
  llvm::Expected<CheckpointInput> input = locateInput(options.input);
  if (!input)
    return input.takeError();
  std::string quantizedDir;
  if (options.weightDtype == "fp8") {
    if (input->dir.empty())
      return error("--weight-dtype=fp8 quantizes a checkpoint folder's weights; '" + options.input +
                   "' is a config.json alone");
    if (options.quantizedDir.empty())
      return error("--weight-dtype=fp8 needs a folder for the quantized checkpoint");
    llvm::sys::fs::remove_directories(options.quantizedDir);
    llvm::Expected<QuantizedCheckpoint> quantized =
        quantizeCheckpointFp8(input->dir, options.quantizedDir, kFp8Block);
    if (!quantized)
      return quantized.takeError();
    if (options.report)
      options.report("note", "quantized " + llvm::Twine(quantized->quantized) +
                                 " linear weights to block-wise fp8 (128x128)");
    llvm::Expected<CheckpointInput> located = locateInput(options.quantizedDir);
    if (!located)
      return located.takeError();
    *input = *located;
    quantizedDir = input->dir;
  }
  llvm::Expected<std::string> configText = models::readConfigText(input->configPath);
  if (!configText)
    return configText.takeError();
  llvm::Expected<models::Qwen3Config> config =
      models::parseQwen3Config(*configText, input->configPath);
  if (!config)
    return config.takeError();

  std::unique_ptr<CompiledModel> compiled(new CompiledModel());
  compiled->QuantizedDir = quantizedDir;
  compiled->Target = options.target;
  compiled->StopAfter = options.stopAfter;
  compiled->NumLayers = config->numLayers;
  target::ArtifactOptions &artifact = compiled->Artifact;
  artifact.checkpointDir = input->dir;
  artifact.cpu = options.cpu;
  artifact.target = options.target == CompileTarget::CUDA ? "cuda" : "cpu";
  artifact.ptxas = options.ptxas;
  // The CPU target decides the vector width and the codegen's ISA features;
  // the artifact writer resolves it again for the object and the manifest.
  std::optional<target::CpuTarget> cpuTarget;
  if (options.target == CompileTarget::CPU) {
    llvm::Expected<target::CpuTarget> resolved = target::resolveCpuTarget(options.cpu);
    if (!resolved)
      return resolved.takeError();
    cpuTarget = std::move(*resolved);
    if (options.vectorWidth == 16 && !cpuTarget->has("avx512f"))
      return error("--vector-width=16 needs AVX-512, which --cpu=" + options.cpu + " (" +
                   cpuTarget->cpu + ") lacks");
  }
  const int64_t lanes = options.vectorWidth != 0 ? options.vectorWidth
                        : cpuTarget              ? cpuTarget->preferredVectorWidth()
                                                 : 8;
  std::optional<rt::SafetensorsArchive> archive;
  if (!input->dir.empty())
    if (llvm::Error failed = openCheckpoint(options, input->dir, archive, artifact))
      return std::move(failed);
  artifact.model = describeModel(*config);
  // The quantized checkpoint moves into the artifact folder (writeArtifact).
  if (!quantizedDir.empty())
    artifact.checkpointDir = kQuantizedCheckpointName;

  models::BuildOptions buildOptions;
  buildOptions.pageSize = options.pageSize;
  buildOptions.kvDtype = options.kvDtype;
  buildOptions.hiddenStates = options.hiddenStates;
  // The CPU and CUDA matmul kernels read fp8 weights (CUDA: cuBLASLt's
  // block-scaled FP8 GEMM or a generated kernel, passes/Codegen/GPU/Fp8Matmul.cpp).
  buildOptions.fp8Weights = true;
  if (archive)
    buildOptions.hasTensor = [&](const std::string &name) { return archive->find(name) != nullptr; };
  compiled->Module = models::buildQwen3Graph(*compiled->Context, *config, buildOptions);
  ModuleOp module = compiled->module();
  if (options.vision != CompileCheckpointOptions::Vision::Off)
    if (llvm::Error failed = addVisionProgram(module, options, input->configPath, *configText, *config,
                                             archive, artifact))
      return std::move(failed);
  if (failed(module.verify()))
    return error("the Qwen3 builder produced invalid IR (a compiler bug)");
  if (archive)
    if (llvm::Error bad = checkWeights(options, module, *config, *archive))
      return std::move(bad);

  // The stage table one stage at a time, so the IR can be printed between
  // any two stages on either target.
  CompilePipelineOptions pipelineOptions;
  pipelineOptions.vectorWidth = lanes;
  pipelineOptions.target = artifact.target;
  pipelineOptions.bf16Activations = options.bf16Activations;
  pipelineOptions.gpuAttention = options.gpuAttention;
  pipelineOptions.gpuGemv = options.gpuGemv;
  if (cpuTarget)
    pipelineOptions.cpuFeatures = llvm::ArrayRef<std::string>(cpuTarget->isaFeatures);
  for (const CompileStageInfo &stage : compileStages()) {
    if (stage.stage > options.stopAfter)
      break;
    PassManager pm(compiled->Context.get());
    addCompileStagePasses(pm, stage.stage, pipelineOptions);
    if (!pm.getPasses().empty() && failed(pm.run(module)))
      return error("compilation failed (see the diagnostics above)");
    if (options.dumpStream && llvm::is_contained(options.dumpAfter, stage.stage)) {
      *options.dumpStream << "// ----- IR after stage '" << stage.name << "' -----\n";
      module.print(*options.dumpStream);
    }
  }
  return std::move(compiled);
}

llvm::Expected<llvm::json::Object> CompiledModel::manifest() {
  return target::buildManifest(module(), Artifact);
}

llvm::Error CompiledModel::writeArtifact(llvm::StringRef outputDir) {
  if (StopAfter != CompileStage::LLVM)
    return error("an artifact needs the whole pipeline; drop --stop-after-stage or use --emit=mlir");
  if (llvm::Error failed = Target == CompileTarget::CUDA
                               ? target::writeCudaArtifact(module(), Artifact, outputDir)
                               : target::writeCpuArtifact(module(), Artifact, outputDir))
    return failed;
  if (QuantizedDir.empty())
    return llvm::Error::success();
  llvm::SmallString<256> into(outputDir);
  llvm::sys::path::append(into, kQuantizedCheckpointName);
  if (std::error_code ec = llvm::sys::fs::rename(QuantizedDir, into))
    return error("cannot move the quantized checkpoint " + QuantizedDir + " to " + into + ": " +
                 ec.message());
  QuantizedDir.clear();
  return llvm::Error::success();
}

} // namespace qwen
