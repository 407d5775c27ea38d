//===- Registration.cpp - Register the project's dialects and passes ------===//
#include "lib/Compiler/Registration.h"

#include "dialects/QKernel/IR/QKernel.h"
#include "dialects/QTF/IR/QTF.h"
#include "passes/Codegen/CPU/Passes.h"
#include "passes/Codegen/GPU/Passes.h"
#include "passes/Fusion/Passes.h"
#include "passes/Graph/Passes.h"
#include "passes/Pipelines/Pipelines.h"
#include "passes/Schedule/Passes.h"

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
