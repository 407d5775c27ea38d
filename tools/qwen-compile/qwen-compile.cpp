//===- qwen-compile.cpp - HF checkpoint folder -> compiled artifact -------===//
//
//   qwen-compile CHECKPOINT_DIR -o model.qwenc
//   qwen-compile config.json -o model.qwenc            (weights bound later)
//   qwen-compile CHECKPOINT_DIR --emit=mlir --stop-after-stage=fused
//   qwen-compile CHECKPOINT_DIR -o m.qwenc --dump-ir-after=graph,fused
//
// Parses the options and reports; the work is compileCheckpoint()'s
// (lib/Compiler/CompileCheckpoint).
//
//===----------------------------------------------------------------------===//
#include "qwen/Compiler/CompileCheckpoint.h"
#include "qwen/Passes/Pipelines/Pipelines.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

namespace cl = llvm::cl;

static cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                                      cl::desc("<checkpoint folder or config.json>"));
static cl::opt<std::string> outputPath("o", cl::desc("artifact folder to write (NAME.qwenc)"),
                                       cl::value_desc("path"));
static cl::opt<std::string> emit("emit", cl::init("artifact"),
                                 cl::desc("what to produce: artifact, mlir, manifest"));
static cl::opt<std::string> stopAfter("stop-after-stage", cl::init("llvm"),
                                      cl::desc("last pipeline stage (see the stages below)"));
static cl::list<std::string> dumpIRAfter(
    "dump-ir-after", cl::CommaSeparated,
    cl::desc("print the IR after these stages to stderr (see the stages below, or all)"));
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
static cl::opt<bool> vision(
    "vision",
    cl::desc("require the vision encoder of a Qwen3.5 checkpoint (its vision_config), compiled as a "
             "second program, @vision, that turns image patches into the embeddings of their "
             "<|image_pad|> tokens; the default for a checkpoint with a vision_config and the "
             "tower's weights, an error for a text-only one"),
    cl::init(false));
static cl::opt<bool> noVision(
    "no-vision",
    cl::desc("compile the language model alone, without the vision program (images then need "
             "precomputed embeddings: qwen-run logits --image-embeds)"),
    cl::init(false));
static cl::alias textOnly("text-only", cl::desc("alias for --no-vision"), cl::aliasopt(noVision));
static cl::opt<std::string> ptxas("ptxas", cl::init(""),
                                  cl::desc("--target=cuda: the ptxas that assembles kernels.cubin "
                                           "(default: PATH, then /usr/local/cuda/bin; none: PTX only)"));
static cl::opt<std::string> cpu("cpu", cl::init("native"),
                                cl::desc("CPU the kernels run on: native (this machine's CPU and "
                                         "features, the default), portable (x86-64-v3: AVX2, "
                                         "FMA, F16C) or an LLVM CPU name (znver4, x86-64-v4, ...)"));
static cl::opt<std::string> gpuGemv(
    "gpu-gemv", cl::init("cublaslt"),
    cl::desc("cuda: decode steps (<= 8 rows) of bf16 / f16 / f32 GEMMs run cuBLASLt "
             "(cublaslt, the default) or a generated GEMV (generated)"));
static cl::opt<std::string> bf16Activations(
    "bf16-activations", cl::init("auto"),
    cl::desc("bf16 matmuls on AVX512-BF16 CPUs: auto (the default: the decoder's GEMMs "
             "round the activations to bf16, as llama.cpp and HF's bf16 run; the lm_head "
             "and the MoE router keep f32 FMAs; off on other CPUs and weight dtypes), off "
             "(f32 FMAs everywhere), split (decode tiles as two bf16 parts, f32-level "
             "results) or round (every GEMM rounds)"));
static cl::opt<std::string> gpuAttention(
    "gpu-attention", cl::init("simt"),
    cl::desc("--target=cuda: prefill attention tiles on CUDA cores (simt, the default) or on "
             "tensor cores (mma: mma.sync flash attention, bf16 / f16 KV caches; an f32 cache "
             "keeps simt)"));

static cl::opt<std::string> weightDtype(
    "weight-dtype", cl::init(""),
    cl::desc("fp8: quantize the checkpoint's decoder linear weights to block-wise float8_e4m3fn "
             "(128x128 blocks, HF's FineGrainedFP8 format) into <artifact>/checkpoint, which the "
             "artifact binds; embeddings, norms and lm_head keep their dtype"));

static cl::opt<bool> noWeightScan(
    "no-weight-scan",
    cl::desc("skip the scan of the checkpoint's weights for NaN and infinite values"),
    cl::init(false));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "qwen-compile: error: " << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  std::string overview = "Qwen compiler: HF checkpoint -> artifact\n\nStages of the pipeline:\n" +
                         qwen::describeCompileStages();
  cl::ParseCommandLineOptions(argc, argv, overview);
  auto start = std::chrono::steady_clock::now();

  qwen::CompileCheckpointOptions options;
  options.input = inputPath;
  if (!llvm::sys::fs::exists(inputPath))
    return fail("input '" + inputPath + "' does not exist");
  if (emit != "artifact" && emit != "mlir" && emit != "manifest")
    return fail("unknown --emit value '" + emit + "' (artifact, mlir, manifest)");
  if (emit == "artifact" && outputPath.empty())
    return fail("-o <artifact folder> is required when emitting an artifact");
  std::optional<qwen::CompileTarget> compileTarget = qwen::parseCompileTarget(target);
  if (!compileTarget)
    return fail("unknown --target '" + target + "' (cpu, cuda)");
  options.target = *compileTarget;
  options.pageSize = pageSize;
  options.kvDtype = kvDtype;
  options.vectorWidth = vectorWidth;
  options.gpuAttention = gpuAttention;
  if (llvm::Error invalid = qwen::verifyCompileCheckpointOptions(options))
    return fail(llvm::toString(std::move(invalid)));
  for (const std::string &name : dumpIRAfter) {
    if (name == "all") {
      for (const qwen::CompileStageInfo &stage : qwen::compileStages())
        options.dumpAfter.push_back(stage.stage);
      continue;
    }
    std::optional<qwen::CompileStage> stage = qwen::parseCompileStage(name);
    if (!stage)
      return fail("unknown stage '" + name + "' in --dump-ir-after (" + qwen::compileStageNameList() +
                  ", all)");
    options.dumpAfter.push_back(*stage);
  }
  options.dumpStream = &llvm::errs();
  std::optional<qwen::CompileStage> lastStage = qwen::parseCompileStage(stopAfter);
  if (!lastStage)
    return fail("unknown stage '" + stopAfter + "' in --stop-after-stage (" + qwen::compileStageNameList() + ")");
  options.stopAfter = *lastStage;
  if (emit == "artifact" && options.stopAfter != qwen::CompileStage::LLVM)
    return fail("an artifact needs the whole pipeline; drop --stop-after-stage or use --emit=mlir");
  options.hiddenStates = hiddenStates;
  if (vision && noVision)
    return fail("--vision and --no-vision contradict each other");
  options.vision = vision     ? qwen::CompileCheckpointOptions::Vision::On
                   : noVision ? qwen::CompileCheckpointOptions::Vision::Off
                              : qwen::CompileCheckpointOptions::Vision::Auto;
  options.ptxas = ptxas;
  options.cpu = cpu;
  options.bf16Activations = bf16Activations;
  options.gpuGemv = gpuGemv;
  options.scanWeights = !noWeightScan;
  options.weightDtype = weightDtype;
  // The quantized checkpoint is written next to the artifact (moved into it
  // once written), or for --emit=mlir / manifest to a scratch folder.
  llvm::SmallString<128> scratch;
  if (weightDtype == "fp8") {
    if (!outputPath.empty()) {
      options.quantizedDir = outputPath + ".fp8-checkpoint";
    } else if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("qwen-fp8", scratch)) {
      return fail("cannot create a folder for the quantized checkpoint: " + ec.message());
    } else {
      options.quantizedDir = scratch.str().str();
    }
  }
  // Gone once moved into the artifact; left behind only by a failure.
  llvm::scope_exit removeQuantized([&] {
    if (!options.quantizedDir.empty())
      llvm::sys::fs::remove_directories(options.quantizedDir);
  });
  options.report = [](llvm::StringRef severity, const llvm::Twine &message) {
    llvm::errs() << "qwen-compile: " << severity << ": " << message << "\n";
  };

  llvm::Expected<std::unique_ptr<qwen::CompiledModel>> compiled = qwen::compileCheckpoint(options);
  if (!compiled)
    return fail(llvm::toString(compiled.takeError()));
  qwen::CompiledModel &model = **compiled;
  if (emit == "mlir") {
    model.module().print(llvm::outs());
    return 0;
  }
  if (emit == "manifest") {
    llvm::Expected<llvm::json::Object> manifest = model.manifest();
    if (!manifest)
      return fail(llvm::toString(manifest.takeError()));
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(*manifest))) << "\n";
    return 0;
  }
  if (llvm::Error written = model.writeArtifact(outputPath))
    return fail(llvm::toString(std::move(written)));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  llvm::errs() << "qwen-compile: wrote " << outputPath << " (" << model.numLayers() << " layers, "
               << llvm::format("%.2f", seconds) << " s)\n";
  return 0;
}
