//===- Pipelines.cpp - The qwen-compile pipeline --------------------------===//
#include "passes/Pipelines/Pipelines.h"

#include "passes/Codegen/CPU/Passes.h"
#include "passes/Codegen/GPU/Passes.h"
#include "passes/Fusion/Passes.h"
#include "passes/Graph/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

static constexpr std::pair<qwen::CompileStage, llvm::StringLiteral> kStageNames[] = {
    {qwen::CompileStage::Graph, "graph"},       {qwen::CompileStage::Stacked, "stacked"},
    {qwen::CompileStage::Fused, "fused"},       {qwen::CompileStage::Outlined, "outlined"},
    {qwen::CompileStage::Planned, "planned"},   {qwen::CompileStage::Kernels, "kernels"},
    {qwen::CompileStage::LLVM, "llvm"}};

std::optional<qwen::CompileStage> qwen::parseCompileStage(llvm::StringRef name) {
  for (auto [stage, stageName] : kStageNames)
    if (stageName == name)
      return stage;
  return std::nullopt;
}

llvm::StringRef qwen::compileStageName(CompileStage stage) {
  for (auto [candidate, stageName] : kStageNames)
    if (candidate == stage)
      return stageName;
  return "";
}

void qwen::buildQwenCompilePipeline(OpPassManager &pm,
                                    const CompilePipelineOptions &options) {
  CompileStage last = parseCompileStage(options.stopAfter).value_or(CompileStage::LLVM);
  auto reached = [&](CompileStage stage) { return last < stage; };
  if (reached(CompileStage::Stacked))
    return;
  pm.addNestedPass<func::FuncOp>(graph::createStackProjectionsPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  if (reached(CompileStage::Fused))
    return;
  pm.addNestedPass<func::FuncOp>(fusion::createFormKernelRegionsPass());
  if (reached(CompileStage::Outlined))
    return;
  pm.addPass(fusion::createOutlineKernelsPass());
  // On the GPU, GEMM activations are stored in the weight dtype by their
  // producer (no pack kernel), which changes buffer dtypes: before planning.
  if (options.target == "cuda")
    pm.addPass(codegen::gpu::createGpuNarrowGemmInputsPass());
  if (reached(CompileStage::Planned))
    return;
  pm.addNestedPass<func::FuncOp>(fusion::createPlanBuffersPass());
  if (reached(CompileStage::Kernels))
    return;
  if (options.target == "cuda") {
    pm.addPass(codegen::gpu::createGpuLowerKernelsPass());
    if (reached(CompileStage::LLVM))
      return;
    codegen::gpu::addGpuLowerToNVVMPasses(pm);
    return;
  }
  codegen::cpu::LowerKernelsToLoopsPassOptions cpuOptions;
  cpuOptions.vectorWidth = options.vectorWidth;
  cpuOptions.cpuFeatures.assign(options.cpuFeatures.begin(), options.cpuFeatures.end());
  cpuOptions.bf16Activations = options.bf16Activations;
  pm.addPass(codegen::cpu::createLowerKernelsToLoopsPass(cpuOptions));
  if (reached(CompileStage::LLVM))
    return;
  codegen::cpu::addCpuLowerToLLVMPasses(pm.nest<ModuleOp>());
}

void qwen::registerQwenCompilePipeline() {
  PassPipelineRegistration<CompilePipelineOptions>(
      "qwen-compile-pipeline",
      "The qwen-compile pipeline: graph rewrites, fusion, outlining, buffer "
      "planning and CPU codegen down to the LLVM dialect",
      buildQwenCompilePipeline);
  PassPipelineRegistration<>(
      "qwen-cpu-lower-to-llvm",
      "Upstream lowering of a CPU kernels module to the LLVM dialect",
      [](OpPassManager &pm) { codegen::cpu::addCpuLowerToLLVMPasses(pm); });
}
