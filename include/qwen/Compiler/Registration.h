//===- Registration.h - Register the project's dialects and passes -*- C++ -*-===//
#ifndef QWEN_COMPILER_REGISTRATION_H
#define QWEN_COMPILER_REGISTRATION_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace qwen {
/// Adds qtf, qkernel and every upstream dialect the pipeline creates.
void registerAllDialects(mlir::DialectRegistry &registry);
/// Registers the project's passes and the qwen-compile pipeline.
void registerAllPasses();
} // namespace qwen

#endif // QWEN_COMPILER_REGISTRATION_H
