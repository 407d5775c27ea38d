//===- LowerToNVVM.cpp - gpu.module @qwen_kernels to PTX ------------------===//
//
// Upstream passes only: scf -> cf, convert-gpu-to-nvvm (64-bit index; it
// also lowers arith / math / memref / vector through their ConvertToLLVM
// interfaces, math functions to libdevice calls), cleanup, then
// gpu-module-to-binary format=isa, which runs the NVPTX backend in process
// and links libdevice from the CUDA toolkit.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/GPU/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVGPUToNVVM/NVGPUToNVVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <cstdlib>

using namespace mlir;
using namespace qwen;

static bool hasLibdevice(StringRef toolkit) {
  llvm::SmallString<128> path(toolkit);
  llvm::sys::path::append(path, "nvvm", "libdevice", "libdevice.10.bc");
  return llvm::sys::fs::exists(path);
}

std::string qwen::codegen::gpu::defaultCudaToolkitPath() {
  if (hasLibdevice("/usr/local/cuda"))
    return "/usr/local/cuda";
  if (const char *home = std::getenv("CUDA_HOME"); home && hasLibdevice(home))
    return home;
  return "";
}

void qwen::codegen::gpu::addGpuLowerToNVVMPasses(OpPassManager &pm, StringRef toolkitPath) {
  // On the whole module: it also marks the launches of the kernels it
  // changes (#qkernel.launch's `programmatic`).
  pm.addPass(createGpuWaitForPrerequisiteGridsPass());
  OpPassManager &gpuPM = pm.nest<mlir::gpu::GPUModuleOp>();
  gpuPM.addPass(createCanonicalizerPass());
  gpuPM.addPass(createCSEPass());
  gpuPM.addPass(createLoopInvariantCodeMotionPass());
  gpuPM.addPass(createGpuExpandSubgroupReducePass());
  // Tensor-core kernels (AttentionMma.cpp): nvgpu.ldmatrix to NVVM.
  gpuPM.addPass(createConvertNVGPUToNVVMPass());
  // scf must be gone before convert-gpu-to-nvvm (no LLVM translation for it).
  gpuPM.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions nvvmOptions;
  nvvmOptions.indexBitwidth = 64;
  gpuPM.addPass(createConvertGpuOpsToNVVMOps(nvvmOptions));
  gpuPM.addPass(createCanonicalizerPass());
  gpuPM.addPass(createCSEPass());
  gpuPM.addPass(createReconcileUnrealizedCastsPass());

  GpuModuleToBinaryPassOptions binaryOptions;
  binaryOptions.compilationTarget = "isa";
  binaryOptions.toolkitPath =
      toolkitPath.empty() ? defaultCudaToolkitPath() : toolkitPath.str();
  pm.addPass(createGpuModuleToBinaryPass(binaryOptions));
}

void qwen::codegen::gpu::registerGpuCodegenDialects(DialectRegistry &registry) {
  registry.insert<arith::ArithDialect, cf::ControlFlowDialect, func::FuncDialect,
                  mlir::gpu::GPUDialect, LLVM::LLVMDialect, math::MathDialect,
                  memref::MemRefDialect, NVVM::NVVMDialect, scf::SCFDialect,
                  ub::UBDialect, vector::VectorDialect>();
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  registerConvertMathToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
}

FailureOr<llvm::StringMap<std::string>> qwen::codegen::gpu::getKernelPTX(ModuleOp module) {
  llvm::StringMap<std::string> kernels;
  llvm::Regex entry("\\.entry[[:space:]]+([A-Za-z_$][A-Za-z0-9_$]*)");
  for (auto binary : module.getOps<mlir::gpu::BinaryOp>()) {
    for (Attribute attr : binary.getObjects()) {
      auto object = cast<mlir::gpu::ObjectAttr>(attr);
      if (object.getFormat() != mlir::gpu::CompilationTarget::Assembly)
        return binary.emitError("gpu.binary object is not PTX (use format=isa)"), failure();
      StringRef ptx = object.getObject().getValue();
      StringRef rest = ptx;
      SmallVector<StringRef, 2> match;
      while (entry.match(rest, &match)) {
        kernels[match[1]] = ptx.str();
        rest = rest.substr(match[0].data() - rest.data() + match[0].size());
      }
    }
  }
  return kernels;
}

namespace {
struct GpuLowerToNVVMOptions : public PassPipelineOptions<GpuLowerToNVVMOptions> {
  Option<std::string> toolkit{*this, "toolkit",
                              llvm::cl::desc("CUDA toolkit folder for libdevice "
                                             "(default: /usr/local/cuda or $CUDA_HOME)"),
                              llvm::cl::init("")};
};
} // namespace

void qwen::codegen::gpu::registerQwenGpuCodegenPipelines() {
  PassPipelineRegistration<GpuLowerToNVVMOptions>(
      "qwen-gpu-lower-to-nvvm",
      "Lowers gpu.module @qwen_kernels to NVVM and serializes it to PTX "
      "(gpu.binary, format=isa)",
      [](OpPassManager &pm, const GpuLowerToNVVMOptions &options) {
        codegen::gpu::addGpuLowerToNVVMPasses(pm, options.toolkit);
      });
}
