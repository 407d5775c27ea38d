//===- Pipelines.cpp - The qwen-compile pipeline --------------------------===//
#include "qwen/Passes/Pipelines/Pipelines.h"

#include "qwen/Passes/Codegen/CPU/Passes.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"
#include "qwen/Passes/Fusion/Passes.h"
#include "qwen/Passes/Graph/Passes.h"
#include "qwen/Passes/Schedule/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using qwen::CompilePipelineOptions;
using qwen::CompileStage;
using qwen::CompileStageInfo;

//===----------------------------------------------------------------------===//
// The passes of each stage
//===----------------------------------------------------------------------===//

static void addStackedPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  pm.addNestedPass<func::FuncOp>(qwen::graph::createStackProjectionsPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
}

static void addFusedPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  pm.addNestedPass<func::FuncOp>(qwen::fusion::createFormKernelRegionsPass());
}

static void addOutlinedPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  pm.addPass(qwen::fusion::createOutlineKernelsPass());
}

static void addCudaOutlinedPasses(OpPassManager &pm, const CompilePipelineOptions &options) {
  addOutlinedPasses(pm, options);
  // GEMM activations are stored in the weight dtype by their producer (no
  // pack kernel), which changes buffer dtypes: before planning.
  pm.addPass(qwen::codegen::gpu::createGpuNarrowGemmInputsPass());
}

static void addScheduledPasses(OpPassManager &pm, const CompilePipelineOptions &options) {
  qwen::schedule::SelectSchedulePassOptions scheduleOptions;
  scheduleOptions.target = options.target;
  scheduleOptions.vectorWidth = options.vectorWidth;
  if (options.target == "cpu") {
    scheduleOptions.cpuFeatures.assign(options.cpuFeatures.begin(), options.cpuFeatures.end());
    scheduleOptions.bf16Activations = options.bf16Activations;
  } else {
    scheduleOptions.gpuAttention = options.gpuAttention;
    scheduleOptions.gpuGemv = options.gpuGemv;
  }
  pm.addPass(qwen::schedule::createSelectSchedulePass(scheduleOptions));
}

static void addPlannedPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  pm.addNestedPass<func::FuncOp>(qwen::fusion::createPlanBuffersPass());
}

static void addCpuKernelsPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  pm.addPass(qwen::codegen::cpu::createLowerKernelsToLoopsPass());
}

static void addCudaKernelsPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  pm.addPass(qwen::codegen::gpu::createGpuLowerKernelsPass());
}

static void addCpuLLVMPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  qwen::codegen::cpu::addCpuLowerToLLVMPasses(pm.nest<ModuleOp>());
}

static void addCudaLLVMPasses(OpPassManager &pm, const CompilePipelineOptions &) {
  qwen::codegen::gpu::addGpuLowerToNVVMPasses(pm);
}

//===----------------------------------------------------------------------===//
// The stage table
//===----------------------------------------------------------------------===//

// The one list of stages: the pipeline builder, qwen-compile's
// --stop-after-stage / --dump-ir-after and their help all read it. A new
// stage is one row here (and one enumerator). `scheduled` gives every
// outlined kernel its #qkernel.schedule before planning; both codegens read
// it.
static constexpr CompileStageInfo kStages[] = {
    {CompileStage::Graph, "graph",
     "the model as qtf ops, as the Qwen3 builder emits it from config.json", nullptr, nullptr},
    {CompileStage::Stacked, "stacked",
     "linears reading one input stacked into one over concatenated weights, then split",
     addStackedPasses, addStackedPasses},
    {CompileStage::Fused, "fused", "ops grouped into qkernel.region kernels of a kind", addFusedPasses,
     addFusedPasses},
    {CompileStage::Outlined, "outlined",
     "each region a func.func in module @kernels, called by qkernel.launch (cuda: GEMM inputs "
     "stored in the weight dtype)",
     addOutlinedPasses, addCudaOutlinedPasses},
    {CompileStage::Scheduled, "scheduled",
     "each kernel function's schedule as a #qkernel.schedule (threads or grain, vector width, "
     "tiles, decode splits)",
     addScheduledPasses, addScheduledPasses},
    {CompileStage::Planned, "planned",
     "launch results assigned to arena buffers (qkernel.buffers, result_buffers)", addPlannedPasses,
     addPlannedPasses},
    {CompileStage::Kernels, "kernels",
     "kernel bodies: cpu scf loops and vector FMAs over flat memrefs; cuda gpu.funcs in "
     "gpu.module @qwen_kernels and GEMMs as cuBLASLt descriptors",
     addCpuKernelsPasses, addCudaKernelsPasses},
    {CompileStage::LLVM, "llvm",
     "cpu: the kernels module in the LLVM dialect; cuda: the kernels as NVVM serialized to PTX "
     "(gpu.binary)",
     addCpuLLVMPasses, addCudaLLVMPasses},
};

llvm::ArrayRef<CompileStageInfo> qwen::compileStages() { return kStages; }

const CompileStageInfo &qwen::compileStageInfo(CompileStage stage) {
  for (const CompileStageInfo &info : kStages)
    if (info.stage == stage)
      return info;
  llvm_unreachable("every CompileStage has a row in the stage table");
}

std::optional<CompileStage> qwen::parseCompileStage(llvm::StringRef name) {
  for (const CompileStageInfo &info : kStages)
    if (info.name == name)
      return info.stage;
  return std::nullopt;
}

llvm::StringRef qwen::compileStageName(CompileStage stage) { return compileStageInfo(stage).name; }

std::string qwen::compileStageNameList() {
  std::string list;
  for (const CompileStageInfo &info : kStages)
    list += (list.empty() ? "" : ", ") + info.name.str();
  return list;
}

llvm::StringRef qwen::stopAfterOptionHelp() {
  static const std::string help = "last stage to run (" + compileStageNameList() + ")";
  return help;
}

std::string qwen::describeCompileStages() {
  std::string text;
  for (const CompileStageInfo &info : kStages)
    text += "  " + info.name.str() + " - " + info.description.str() + "\n";
  return text;
}

std::optional<qwen::CompileTarget> qwen::parseCompileTarget(llvm::StringRef name) {
  if (name == "cpu")
    return CompileTarget::CPU;
  if (name == "cuda")
    return CompileTarget::CUDA;
  return std::nullopt;
}

void qwen::addCompileStagePasses(OpPassManager &pm, CompileStage stage,
                                 const CompilePipelineOptions &options) {
  CompileTarget target = parseCompileTarget(options.target).value_or(CompileTarget::CPU);
  if (AddStagePasses add = compileStageInfo(stage).passesFor(target))
    add(pm, options);
}

void qwen::buildQwenCompilePipeline(OpPassManager &pm, const CompilePipelineOptions &options) {
  CompileStage last = parseCompileStage(options.stopAfter).value_or(CompileStage::LLVM);
  for (const CompileStageInfo &info : kStages) {
    if (info.stage > last)
      return;
    addCompileStagePasses(pm, info.stage, options);
  }
}

void qwen::registerQwenCompilePipeline() {
  // Registered by hand rather than with PassPipelineRegistration so that an
  // unknown target or stage is an error, not the default.
  registerPassPipeline(
      "qwen-compile-pipeline",
      "The qwen-compile pipeline: graph rewrites, fusion, outlining, buffer planning and CPU or "
      "CUDA codegen (stages: " +
          compileStageNameList() + ")",
      [](OpPassManager &pm, StringRef optionsText,
         function_ref<LogicalResult(const Twine &)> errorHandler) -> LogicalResult {
        CompilePipelineOptions options;
        if (failed(options.parseFromString(optionsText)))
          return failure();
        if (!parseCompileTarget(options.target))
          return errorHandler("unknown target '" + options.target + "' (cpu, cuda)");
        if (!parseCompileStage(options.stopAfter))
          return errorHandler("unknown stage '" + options.stopAfter + "' (" + compileStageNameList() +
                              ")");
        buildQwenCompilePipeline(pm, options);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> optionsHandler) {
        optionsHandler(CompilePipelineOptions());
      });
  PassPipelineRegistration<>(
      "qwen-cpu-lower-to-llvm",
      "Upstream lowering of a CPU kernels module to the LLVM dialect",
      [](OpPassManager &pm) { codegen::cpu::addCpuLowerToLLVMPasses(pm); });
}
