//===- Passes.h - GPU codegen -----------------------------------*- C++ -*-===//
#ifndef QWEN_PASSES_CODEGEN_GPU_PASSES_H
#define QWEN_PASSES_CODEGEN_GPU_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/StringMap.h"

namespace qwen::codegen::gpu {
#define GEN_PASS_DECL
#include "qwen/Passes/Codegen/GPU/Passes.h.inc"

/// Name of the gpu.module that holds every generated kernel.
inline constexpr llvm::StringLiteral kGpuModuleName = "qwen_kernels";

/// Upstream lowering of `gpu.module @qwen_kernels` (nested in the module the
/// pass manager runs on) to NVVM, then serialization to PTX with
/// gpu-module-to-binary format=isa. libdevice is linked from `toolkitPath`
/// (default: /usr/local/cuda when it exists, else $CUDA_HOME).
void addGpuLowerToNVVMPasses(mlir::OpPassManager &modulePM,
                             llvm::StringRef toolkitPath = "");

/// The CUDA toolkit folder used for libdevice: /usr/local/cuda if present,
/// else $CUDA_HOME, else "" (then math functions stay unresolved externs).
std::string defaultCudaToolkitPath();

/// PTX text of every `gpu.binary` object of `module`, keyed by kernel
/// (`.entry`) name. Kernels of one gpu.module share one PTX text: the
/// runtime loads it once (cuModuleLoadData) and gets each kernel with
/// cuModuleGetFunction. Fails on objects that are not PTX (format != isa).
mlir::FailureOr<llvm::StringMap<std::string>>
getKernelPTX(mlir::ModuleOp module);

/// What a tool that runs the GPU codegen needs beyond the project's own
/// dialects, when it does not register everything upstream (qwen-compile):
/// the gpu / nvvm / cf / ub dialects, the NVVM target attribute's
/// serialization, the ConvertToLLVM interfaces convert-gpu-to-nvvm collects
/// patterns from, and the LLVM IR translations gpu-module-to-binary uses.
void registerGpuCodegenDialects(mlir::DialectRegistry &registry);

/// Registers the "qwen-gpu-lower-to-nvvm" pipeline (the passes themselves
/// come from registerQwenGpuCodegenPasses() below).
void registerQwenGpuCodegenPipelines();

#define GEN_PASS_REGISTRATION
#include "qwen/Passes/Codegen/GPU/Passes.h.inc"
} // namespace qwen::codegen::gpu

#endif // QWEN_PASSES_CODEGEN_GPU_PASSES_H
