//===- qwen-opt.cpp - mlir-opt for the Qwen compiler ----------------------===//
//
// Registers every upstream dialect and pass plus the project's dialects,
// passes and pipelines; the driver of the lit tests.
//
//===----------------------------------------------------------------------===//
#include "qwen/Compiler/Registration.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  qwen::registerAllPasses();
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  qwen::registerAllDialects(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Qwen compiler optimizer driver\n", registry));
}
