//===- Registration.cpp - Register the project's dialects and passes ------===//
#include "qwen/Compiler/Registration.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"
#include "qwen/Passes/Codegen/CPU/Passes.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"
#include "qwen/Passes/Fusion/Passes.h"
#include "qwen/Passes/Graph/Passes.h"
#include "qwen/Passes/Pipelines/Pipelines.h"
#include "qwen/Passes/Schedule/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/DialectRegistry.h"

void qwen::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<qtf::QTFDialect, qkernel::QKernelDialect,
                  mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::math::MathDialect, mlir::memref::MemRefDialect,
                  mlir::scf::SCFDialect, mlir::vector::VectorDialect,
                  mlir::LLVM::LLVMDialect, mlir::tensor::TensorDialect>();
}

void qwen::registerAllPasses() {
  graph::registerQwenGraphPasses();
  fusion::registerQwenFusionPasses();
  schedule::registerQwenSchedulePasses();
  codegen::cpu::registerQwenCpuCodegenPasses();
  codegen::gpu::registerQwenGpuCodegenPasses();
  codegen::gpu::registerQwenGpuCodegenPipelines();
  registerQwenCompilePipeline();
}
