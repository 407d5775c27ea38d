//===- Pipelines.h - The qwen-compile pipeline ------------------*- C++ -*-===//
#ifndef QWEN_PASSES_PIPELINES_PIPELINES_H
#define QWEN_PASSES_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace qwen {

/// Stages of the pipeline, in order; `--dump-ir-after` and `--emit` name them.
enum class CompileStage { Graph, Stacked, Fused, Outlined, Planned, Kernels, LLVM };

/// Parses a stage name ("graph", "stacked", "fused", "outlined", "planned",
/// "kernels", "llvm").
std::optional<CompileStage> parseCompileStage(llvm::StringRef name);
llvm::StringRef compileStageName(CompileStage stage);

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
      llvm::cl::desc("AVX512-BF16 matmul tiles: split or round the f32 activations"),
      llvm::cl::init("split")};
  Option<std::string> target{*this, "target",
                             llvm::cl::desc("kernel target: cpu or cuda"),
                             llvm::cl::init("cpu")};
  Option<std::string> stopAfter{
      *this, "stop-after",
      llvm::cl::desc("last stage to run (graph, stacked, fused, outlined, "
                     "planned, kernels, llvm)"),
      llvm::cl::init("llvm")};
};

/// The one pipeline qwen-compile and the lit tests share: graph rewrites,
/// target-independent fusion and outlining, buffer planning, then per target
/// codegen: CPU loops lowered to the LLVM dialect, or (cuda) gpu.funcs lowered
/// through NVVM to PTX with GEMMs recorded as cuBLASLt descriptors. The
/// `@step` function stays as the host program the artifact writer serializes.
void buildQwenCompilePipeline(mlir::OpPassManager &pm,
                              const CompilePipelineOptions &options);

/// Registers "qwen-compile-pipeline" for qwen-opt.
void registerQwenCompilePipeline();

} // namespace qwen

#endif // QWEN_PASSES_PIPELINES_PIPELINES_H
