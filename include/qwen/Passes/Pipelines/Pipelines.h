//===- Pipelines.h - The qwen-compile pipeline ------------------*- C++ -*-===//
//
// The pipeline is a table of stages (compileStages()): each has a name, a
// description of the IR it leaves, and the passes that produce it from the
// previous stage's IR, per target. buildQwenCompilePipeline() runs the table
// up to a stage; qwen-compile runs it stage by stage (to print the IR after
// any of them) and takes its option help and validation from it.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_PIPELINES_PIPELINES_H
#define QWEN_PASSES_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "llvm/ADT/ArrayRef.h"

namespace qwen {

/// Stages of the pipeline, in order; `--dump-ir-after` and
/// `--stop-after-stage` name them.
enum class CompileStage { Graph, Stacked, Fused, Outlined, Scheduled, Planned, Kernels, LLVM };

/// What the kernels are generated for.
enum class CompileTarget { CPU, CUDA };

/// "cpu" or "cuda".
std::optional<CompileTarget> parseCompileTarget(llvm::StringRef name);

/// "last stage to run (graph, stacked, ...)": the help of the stop-after
/// option, from the stage table.
llvm::StringRef stopAfterOptionHelp();

struct CompilePipelineOptions
    : public mlir::PassPipelineOptions<CompilePipelineOptions> {
  Option<int64_t> vectorWidth{*this, "vector-width",
                              llvm::cl::desc("CPU f32 lanes per vector"),
                              llvm::cl::init(8)};
  ListOption<std::string> cpuFeatures{
      *this, "cpu-features",
      llvm::cl::desc("ISA extensions of the target CPU (LLVM spelling)")};
  Option<std::string> bf16Activations{
      *this, "bf16-activations",
      llvm::cl::desc("AVX512-BF16 matmul tiles: auto (round but at the lm_head and router), "
                     "off, split or round the f32 activations"),
      llvm::cl::init("auto")};
  Option<std::string> gpuAttention{
      *this, "gpu-attention",
      llvm::cl::desc("cuda: prefill attention tiles on CUDA cores (simt) or tensor cores (mma, "
                     "bf16 / f16 KV caches)"),
      llvm::cl::init("simt")};
  Option<std::string> gpuGemv{
      *this, "gpu-gemv",
      llvm::cl::desc("cuda decode steps of bf16 / f16 / f32 GEMMs: cublaslt or generated"),
      llvm::cl::init("cublaslt")};
  Option<std::string> target{*this, "target",
                             llvm::cl::desc("kernel target: cpu or cuda"),
                             llvm::cl::init("cpu")};
  Option<std::string> stopAfter{*this, "stop-after",
                                llvm::cl::desc(stopAfterOptionHelp()),
                                llvm::cl::init("llvm")};
};

/// Adds the passes of one stage for one target to a pass manager anchored on
/// the builtin module.
using AddStagePasses = void (*)(mlir::OpPassManager &pm,
                                const CompilePipelineOptions &options);

/// One row of the stage table.
struct CompileStageInfo {
  CompileStage stage;
  llvm::StringLiteral name;
  /// What the IR holds after this stage (option help, docs).
  llvm::StringLiteral description;
  /// The passes from the previous stage's IR to this one's, per target;
  /// null when the stage runs no pass (graph: the model builder's output).
  AddStagePasses cpu;
  AddStagePasses cuda;

  AddStagePasses passesFor(CompileTarget target) const {
    return target == CompileTarget::CUDA ? cuda : cpu;
  }
};

/// The stages, in pipeline order.
llvm::ArrayRef<CompileStageInfo> compileStages();
const CompileStageInfo &compileStageInfo(CompileStage stage);

/// Parses a stage name ("graph", "stacked", ...).
std::optional<CompileStage> parseCompileStage(llvm::StringRef name);
llvm::StringRef compileStageName(CompileStage stage);
/// "graph, stacked, fused, outlined, scheduled, planned, kernels, llvm" (option help).
std::string compileStageNameList();
/// One line per stage, "  name - description" (option help).
std::string describeCompileStages();

/// Adds the passes of `stage` alone (nothing for a stage without passes).
void addCompileStagePasses(mlir::OpPassManager &pm, CompileStage stage,
                           const CompilePipelineOptions &options);

/// The one pipeline qwen-compile and the lit tests share: every stage of
/// compileStages() up to `options.stopAfter`. Graph rewrites,
/// target-independent fusion and outlining, buffer planning, then per target
/// codegen: CPU loops lowered to the LLVM dialect, or (cuda) gpu.funcs
/// lowered through NVVM to PTX with GEMMs recorded as cuBLASLt descriptors.
/// The `@step` function stays as the host program the artifact writer
/// serializes.
void buildQwenCompilePipeline(mlir::OpPassManager &pm,
                              const CompilePipelineOptions &options);

/// Registers "qwen-compile-pipeline" for qwen-opt.
void registerQwenCompilePipeline();

} // namespace qwen

#endif // QWEN_PASSES_PIPELINES_PIPELINES_H
