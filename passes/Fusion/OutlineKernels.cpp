//===- OutlineKernels.cpp - Regions to kernel functions -------------------===//
#include "qwen/Passes/Fusion/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace qwen::fusion {
#define GEN_PASS_DEF_OUTLINEKERNELSPASS
#include "qwen/Passes/Fusion/Passes.h.inc"
} // namespace qwen::fusion

using namespace mlir;
using namespace qwen;

namespace {
/// Returns the nested kernels module, creating it at the end of `top`.
ModuleOp getOrCreateKernelModule(ModuleOp top) {
  if (ModuleOp existing = qkernel::getKernelModule(top))
    return existing;
  OpBuilder builder = OpBuilder::atBlockEnd(top.getBody());
  return ModuleOp::create(builder, top.getLoc(),
                          StringRef(qkernel::kKernelModuleName));
}

struct OutlineKernelsPass final
    : qwen::fusion::impl::OutlineKernelsPassBase<OutlineKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp top = getOperation();
    SmallVector<qkernel::RegionOp> regions;
    top.walk([&](qkernel::RegionOp region) { regions.push_back(region); });
    if (regions.empty())
      return;
    ModuleOp kernels = getOrCreateKernelModule(top);
    SymbolTable symbols(kernels);
    unsigned counter = 0;
    for (qkernel::RegionOp region : regions)
      outline(region, kernels, symbols, counter);

    kernelsByBody.clear();
    // The host no longer reads the views that were cloned into regions.
    bool erased = true;
    while (erased) {
      erased = false;
      top.walk([&](Operation *op) {
        if (isa<qtf::SplitOp, qtf::ReshapeOp, qtf::MergeRowsOp, qtf::WeightOp>(op) &&
            op->use_empty()) {
          op->erase();
          erased = true;
        }
      });
    }
  }

  /// Kernels by their text with the name left out: layers whose regions are
  /// identical (weights are arguments) share one kernel function.
  llvm::StringMap<func::FuncOp> kernelsByBody;

  void outline(qkernel::RegionOp region, ModuleOp kernels, SymbolTable &symbols,
               unsigned &counter) {
    unsigned index = counter;
    llvm::SetVector<Value> captured;
    getUsedValuesDefinedAbove(region.getBody(), captured);
    SmallVector<Type> argTypes;
    for (Value value : captured)
      argTypes.push_back(value.getType());

    OpBuilder builder = OpBuilder::atBlockEnd(kernels.getBody());
    std::string name =
        "qk" + std::to_string(index) + "_" + qkernel::stringifyKernelKind(region.getKind()).str();
    auto func = func::FuncOp::create(
        builder, region.getLoc(), name,
        builder.getFunctionType(argTypes, region.getResultTypes()));
    func->setAttr(qkernel::kKernelAttrName, builder.getUnitAttr());
    func->setAttr(qkernel::kKindAttrName, region.getKindAttr());

    Block *entry = func.addEntryBlock();
    IRMapping mapping;
    for (auto [value, arg] : llvm::zip(captured, entry->getArguments()))
      mapping.map(value, arg);
    builder.setInsertionPointToEnd(entry);
    for (Operation &op : region.getBody().front()) {
      if (auto yield = dyn_cast<qkernel::YieldOp>(op)) {
        SmallVector<Value> results;
        for (Value value : yield.getValues())
          results.push_back(mapping.lookup(value));
        func::ReturnOp::create(builder, yield.getLoc(), results);
        continue;
      }
      builder.clone(op, mapping);
    }

    func::FuncOp existing = reuseIdenticalKernel(func);
    if (existing) {
      func.erase();
      func = existing;
    } else {
      symbols.insert(func);
      ++counter;
    }

    OpBuilder host(region);
    auto kernelRef = SymbolRefAttr::get(
        builder.getStringAttr(qkernel::kKernelModuleName),
        {FlatSymbolRefAttr::get(func.getSymNameAttr())});
    auto launch = qkernel::LaunchOp::create(
        host, region.getLoc(), region.getResultTypes(), kernelRef,
        captured.getArrayRef(), /*result_buffers=*/nullptr, /*grid=*/nullptr);
    region.replaceAllUsesWith(launch.getResults());
    region.erase();
  }

  /// An already outlined kernel with the same body and signature, or null
  /// (then `func` is recorded as the kernel for its body).
  func::FuncOp reuseIdenticalKernel(func::FuncOp func) {
    std::string name = func.getSymName().str();
    func.setSymName("qkernel_candidate");
    std::string text;
    llvm::raw_string_ostream os(text);
    func.print(os);
    func.setSymName(name);
    auto [it, inserted] = kernelsByBody.try_emplace(text, func);
    return inserted ? func::FuncOp() : it->second;
  }
};
} // namespace
