//===- qwen-compile.cpp - HF checkpoint folder -> compiled artifact -------===//
//
//   qwen-compile CHECKPOINT_DIR -o model.qwenc
//   qwen-compile config.json -o model.qwenc            (weights bound later)
//   qwen-compile CHECKPOINT_DIR --emit=mlir --stop-after-stage=fused
//   qwen-compile CHECKPOINT_DIR -o m.qwenc --dump-ir-after=graph,fused
//
//===----------------------------------------------------------------------===//
#include "lib/Compiler/Registration.h"
#include "dialects/QTF/IR/QTF.h"
#include "lib/Target/CPU/ArtifactWriter.h"
#include "lib/Target/CPU/CpuTarget.h"
#include "lib/Target/CUDA/ArtifactWriter.h"
#include "models/qwen3/Qwen3Builder.h"
#include "models/qwen3/Qwen3Config.h"
#include "passes/Codegen/GPU/Passes.h"
#include "passes/Pipelines/Pipelines.h"

#include "qwen_rt/error.h"
#include "qwen_rt/limits.h"
#include "qwen_rt/safetensors.h"
#include "qwen_rt/weights.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <map>

using namespace mlir;
namespace cl = llvm::cl;

static cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                                      cl::desc("<checkpoint folder or config.json>"));
static cl::opt<std::string> outputPath("o", cl::desc("artifact folder to write (NAME.qwenc)"),
                                       cl::value_desc("path"));
static cl::opt<std::string> emit("emit", cl::init("artifact"),
                                 cl::desc("what to produce: artifact, mlir, manifest"));
static cl::opt<std::string> stopAfter("stop-after-stage", cl::init("llvm"),
                                      cl::desc("last pipeline stage: graph, stacked, fused, "
                                               "outlined, planned, kernels, llvm"));
static cl::list<std::string> dumpIRAfter(
    "dump-ir-after", cl::CommaSeparated,
    cl::desc("print the IR after these stages to stderr (graph, stacked, fused, "
             "outlined, planned, kernels, llvm, or all)"));
static cl::opt<int64_t> pageSize("page-size", cl::init(16),
                                 cl::desc("positions per KV-cache page"));
static cl::opt<std::string> kvDtype("kv-dtype", cl::init("f32"),
                                    cl::desc("KV cache element type: f32, bf16 or f16 (half the "
                                             "cache memory and decode bytes; keys and values rounded)"));
static cl::opt<int64_t> vectorWidth("vector-width", cl::init(0),
                                    cl::desc("f32 lanes per CPU vector (8: AVX2, 16: AVX-512; "
                                             "default: 16 where the --cpu has AVX-512, else 8)"));
static cl::opt<std::string> target("target", cl::init("cpu"),
                                   cl::desc("kernel target: cpu (kernels.so), or cuda (sm_90 PTX and, "
                                            "with ptxas, a cubin + cuBLASLt descriptors)"));
static cl::opt<bool> hiddenStates(
    "hidden-states",
    cl::desc("the artifact returns the final hidden states (after the final norm) of the "
             "requested rows instead of logits: embedding models such as Qwen3-Embedding, "
             "whose checkpoints have no lm_head (qwen-run embed)"),
    cl::init(false));
static cl::opt<std::string> ptxas("ptxas", cl::init(""),
                                  cl::desc("--target=cuda: the ptxas that assembles kernels.cubin "
                                           "(default: PATH, then /usr/local/cuda/bin; none: PTX only)"));
static cl::opt<std::string> cpu("cpu", cl::init("native"),
                                cl::desc("CPU the kernels run on: native (this machine's CPU and "
                                         "features, the default), portable (x86-64-v3: AVX2, "
                                         "FMA, F16C) or an LLVM CPU name (znver4, x86-64-v4, ...)"));
static cl::opt<std::string> bf16Activations(
    "bf16-activations", cl::init("split"),
    cl::desc("bf16 matmuls on AVX512-BF16 CPUs: split (activations as two bf16 parts, "
             "f32-level results) or round (activations rounded to bf16, as llama.cpp)"));

static cl::opt<bool> noWeightScan(
    "no-weight-scan",
    cl::desc("skip the scan of the checkpoint's weights for NaN and infinite values"),
    cl::init(false));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "qwen-compile: error: " << message << "\n";
  return 1;
}

/// The pass whose completion ends each stage (printed with --dump-ir-after).
static llvm::StringRef lastPassOfStage(qwen::CompileStage stage) {
  switch (stage) {
  case qwen::CompileStage::Stacked: return "cse";
  case qwen::CompileStage::Fused: return "qwen-fusion-form-kernel-regions";
  case qwen::CompileStage::Outlined: return "qwen-fusion-outline-kernels";
  case qwen::CompileStage::Planned: return "qwen-plan-buffers";
  case qwen::CompileStage::Kernels: return "qwen-cpu-lower-kernels";
  default: return "";
  }
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "Qwen compiler: HF checkpoint -> artifact\n");
  auto start = std::chrono::steady_clock::now();

  std::string configPath = inputPath, checkpointDir;
  if (llvm::sys::fs::is_directory(inputPath)) {
    llvm::SmallString<256> dir(inputPath);
    llvm::sys::fs::make_absolute(dir);
    llvm::sys::path::remove_dots(dir, true);
    checkpointDir = dir.str().str();
    llvm::SmallString<256> config(dir);
    llvm::sys::path::append(config, "config.json");
    configPath = config.str().str();
  } else if (!llvm::sys::fs::exists(inputPath)) {
    return fail("input '" + inputPath + "' does not exist");
  }
  if (emit == "artifact" && outputPath.empty())
    return fail("-o <artifact folder> is required when emitting an artifact");
  if (target != "cpu" && target != "cuda")
    return fail("unknown --target '" + target + "' (cpu, cuda)");
  if (kvDtype != "f32" && kvDtype != "bf16" && kvDtype != "f16")
    return fail("unknown --kv-dtype '" + kvDtype + "' (f32, bf16, f16)");
  if (pageSize <= 0 || pageSize > qwen::limits::kMaxPageSize)
    return fail("--page-size must be in [1, " + llvm::Twine(qwen::limits::kMaxPageSize) + "]");
  if (vectorWidth != 0 && vectorWidth != 4 && vectorWidth != 8 && vectorWidth != 16)
    return fail("--vector-width must be 4, 8 or 16");
  if (bf16Activations != "split" && bf16Activations != "round")
    return fail("unknown --bf16-activations '" + bf16Activations + "' (split, round)");
  std::optional<qwen::target::CpuTarget> cpuTarget;
  if (target == "cpu") {
    llvm::Expected<qwen::target::CpuTarget> resolved = qwen::target::resolveCpuTarget(cpu);
    if (!resolved)
      return fail(llvm::toString(resolved.takeError()));
    cpuTarget = std::move(*resolved);
    if (vectorWidth == 16 && !cpuTarget->has("avx512f"))
      return fail("--vector-width=16 needs AVX-512, which --cpu=" + cpu + " (" + cpuTarget->cpu +
                  ") lacks");
  }
  const int64_t lanes = vectorWidth != 0 ? int64_t(vectorWidth)
                                         : cpuTarget ? cpuTarget->preferredVectorWidth() : 8;
  llvm::StringSet<> dumpStages;
  for (const std::string &stage : dumpIRAfter) {
    if (stage != "all" && !qwen::parseCompileStage(stage))
      return fail("unknown stage '" + stage + "' in --dump-ir-after");
    dumpStages.insert(stage);
  }
  if (!qwen::parseCompileStage(stopAfter))
    return fail("unknown stage '" + stopAfter + "' in --stop-after-stage");
  auto wantDump = [&](qwen::CompileStage stage) {
    return dumpStages.contains("all") || dumpStages.contains(qwen::compileStageName(stage));
  };

  llvm::Expected<qwen::models::Qwen3Config> config = qwen::models::readQwen3Config(configPath);
  if (!config)
    return fail(llvm::toString(config.takeError()));

  // Checkpoint files and their header hashes, so the runtime notices a
  // checkpoint that changed after compilation.
  qwen::target::ArtifactOptions artifact;
  artifact.checkpointDir = checkpointDir;
  artifact.cpu = cpu;
  artifact.target = target;
  artifact.ptxas = ptxas;
  std::optional<qwen::rt::SafetensorsArchive> archive;
  if (!checkpointDir.empty()) {
    // The files the runtime will read (the index's shards, model.safetensors,
    // or the only .safetensors file), opened and validated now.
    try {
      archive.emplace(qwen::rt::SafetensorsArchive::openDir(checkpointDir));
    } catch (const qwen::rt::Error &error) {
      return fail(error.what());
    }
    for (const qwen::rt::SafetensorsFileInfo &info : archive->files())
      artifact.checkpointFiles.push_back({info.name, info.size, info.headerHash});
    // NaN or infinite weights make every logit garbage without an error.
    // Scanned once here (one sequential read of the checkpoint) rather than
    // at every load, where weights are mapped without being read.
    if (!noWeightScan)
      for (const std::string &name : archive->names()) {
        qwen::rt::NonFiniteValues bad = qwen::rt::findNonFinite(archive->get(name));
        if (bad.count)
          llvm::errs() << "qwen-compile: warning: checkpoint tensor '" << name << "' has " << bad.count
                       << " NaN or infinite value" << (bad.count == 1 ? "" : "s") << " (the first at flat index "
                       << bad.firstIndex << ")\n";
      }
    if (llvm::sys::fs::exists(checkpointDir + "/tokenizer.json"))
      artifact.tokenizer = "tokenizer.json";
  }
  llvm::json::Array eos;
  for (int64_t id : config->eosTokenIds)
    eos.push_back(id);
  artifact.model = llvm::json::Object{
      {"family", config->modelType},
      {"num_experts", config->numExperts},
      {"num_experts_per_tok", config->numExpertsPerToken},
      {"vocab_size", config->vocabSize},
      {"hidden_size", config->hiddenSize},
      {"intermediate_size", config->intermediateSize},
      {"num_layers", config->numLayers},
      {"num_attention_heads", config->numHeads},
      {"num_kv_heads", config->numKVHeads},
      {"head_dim", config->headDim},
      {"max_position_embeddings", config->maxPositionEmbeddings},
      {"max_context", config->maxContext()},
      {"rope_type", config->ropeScaling.type},
      {"tie_word_embeddings", config->tieWordEmbeddings},
      {"weight_dtype", config->weightDType},
      {"activation_dtype", "f32"},
      {"bos_token_id", config->bosTokenId},
      {"eos_token_ids", std::move(eos)}};
  if (config->quantization.isFp8())
    artifact.model["weight_quantization"] = llvm::json::Object{
        {"method", "fp8"},
        {"weight_block_size",
         llvm::json::Array{config->quantization.fp8Block[0], config->quantization.fp8Block[1]}}};

  DialectRegistry registry;
  qwen::registerAllDialects(registry);
  qwen::codegen::gpu::registerGpuCodegenDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  qwen::models::BuildOptions buildOptions;
  buildOptions.pageSize = pageSize;
  buildOptions.kvDtype = kvDtype;
  buildOptions.hiddenStates = hiddenStates;
  if (archive)
    buildOptions.hasTensor = [&](const std::string &name) { return archive->find(name) != nullptr; };
  OwningOpRef<ModuleOp> module = qwen::models::buildQwen3Graph(context, *config, buildOptions);
  if (failed(module->verify()))
    return fail("the Qwen3 builder produced invalid IR (a compiler bug)");
  // Check the graph's weights against the checkpoint now, with the rules
  // the runtime binds them by, so a missing or mis-shaped tensor is reported
  // by the compiler, not at the first load.
  if (archive) {
    std::string problem;
    llvm::StringSet<> used;
    module->walk([&](qwen::qtf::WeightOp weight) {
      if (!problem.empty())
        return;
      auto type = weight.getResult().getType();
      qwen::rt::WeightSpec spec;
      Type element = type.getElementType();
      spec.dtype = element.isF32()   ? qwen::rt::DType::F32
                   : element.isF16() ? qwen::rt::DType::F16
                                     : qwen::rt::DType::BF16;
      spec.shape.assign(type.getShape().begin(), type.getShape().end());
      spec.fp8Block = config->quantization.fp8Block;
      for (mlir::Attribute source : weight.getSources()) {
        spec.sources.push_back(mlir::cast<mlir::StringAttr>(source).str());
        std::string tensor = qwen::rt::parseWeightSource(spec.sources.back()).tensor;
        used.insert(tensor);
        used.insert(tensor + "_scale_inv"); // FP8 block scales, bound with their weight
      }
      try {
        qwen::rt::resolveWeightSources(*archive, spec, "; the shapes follow from config.json");
      } catch (const qwen::rt::Error &error) {
        problem = error.what();
      }
    });
    if (!problem.empty())
      return fail(problem);
    // Multimodal checkpoints also hold the vision tower and the MTP head,
    // which the text model does not use.
    std::map<std::string, int> skipped;
    for (const std::string &name : archive->names())
      if (!used.contains(name))
        ++skipped[llvm::StringRef(name).starts_with("mtp.")              ? "mtp.*"
                  : llvm::StringRef(name).starts_with("model.visual.") ? "model.visual.*"
                                                                       : "other"];
    for (const auto &[group, count] : skipped)
      llvm::errs() << "qwen-compile: note: " << count << " checkpoint tensor"
                   << (count == 1 ? "" : "s") << " (" << group
                   << ") not used by the text model"
                   << (group == "model.visual.*" ? "; the vision encoder is not supported yet"
                                                 : "")
                   << "\n";
  }
  if (wantDump(qwen::CompileStage::Graph)) {
    llvm::errs() << "// ----- IR after stage 'graph' -----\n";
    module->print(llvm::errs());
  }

  PassManager pm(&context);
  qwen::CompilePipelineOptions pipelineOptions;
  pipelineOptions.vectorWidth = lanes;
  pipelineOptions.bf16Activations = bf16Activations;
  if (cpuTarget)
    pipelineOptions.cpuFeatures = llvm::ArrayRef<std::string>(cpuTarget->isaFeatures);
  pipelineOptions.stopAfter = stopAfter;
  pipelineOptions.target = target;
  qwen::buildQwenCompilePipeline(pm, pipelineOptions);
  if (!dumpStages.empty()) {
    context.disableMultithreading();
    llvm::StringSet<> passes;
    for (qwen::CompileStage stage :
         {qwen::CompileStage::Stacked, qwen::CompileStage::Fused, qwen::CompileStage::Outlined,
          qwen::CompileStage::Planned, qwen::CompileStage::Kernels})
      if (wantDump(stage))
        passes.insert(lastPassOfStage(stage));
    if (!passes.empty())
      pm.enableIRPrinting(
          [](Pass *, Operation *) { return false; },
          [passes](Pass *pass, Operation *) { return passes.contains(pass->getArgument()); },
          /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
  }
  if (failed(pm.run(*module)))
    return fail("compilation failed (see the diagnostics above)");
  if (wantDump(qwen::CompileStage::LLVM) && stopAfter == "llvm") {
    llvm::errs() << "// ----- IR after stage 'llvm' -----\n";
    module->print(llvm::errs());
  }

  if (emit == "mlir") {
    module->print(llvm::outs());
    return 0;
  }
  if (emit == "manifest") {
    auto manifest = qwen::target::buildManifest(*module, artifact);
    if (!manifest)
      return fail(llvm::toString(manifest.takeError()));
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(*manifest))) << "\n";
    return 0;
  }
  if (emit != "artifact")
    return fail("unknown --emit value '" + emit + "' (artifact, mlir, manifest)");
  if (stopAfter != "llvm")
    return fail("an artifact needs the whole pipeline; drop --stop-after-stage or use --emit=mlir");
  llvm::Error written = target == "cuda"
                            ? qwen::target::writeCudaArtifact(*module, artifact, outputPath)
                            : qwen::target::writeCpuArtifact(*module, artifact, outputPath);
  if (written)
    return fail(llvm::toString(std::move(written)));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  llvm::errs() << "qwen-compile: wrote " << outputPath << " (" << config->numLayers
               << " layers, " << llvm::format("%.2f", seconds) << " s)\n";
  return 0;
}
