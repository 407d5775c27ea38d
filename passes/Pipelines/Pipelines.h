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
  Option<std::string> stopAfter{
      *this, "stop-after",
      llvm::cl::desc("last stage to run (graph, stacked, fused, outlined, "
                     "planned, kernels, llvm)"),
      llvm::cl::init("llvm")};
};

/// The one pipeline qwen-compile and the lit tests share: graph rewrites,
/// target-independent fusion and outlining, buffer planning, CPU codegen and
/// lowering of the kernels module to the LLVM dialect. The `@step` function
/// stays as the host program the artifact writer serializes.
void buildQwenCompilePipeline(mlir::OpPassManager &pm,
                              const CompilePipelineOptions &options);

/// Registers "qwen-compile-pipeline" for qwen-opt.
void registerQwenCompilePipeline();

} // namespace qwen

#endif // QWEN_PASSES_PIPELINES_PIPELINES_H
