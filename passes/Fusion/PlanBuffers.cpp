//===- PlanBuffers.cpp - Arena buffers for launch results -----------------===//
#include "qwen/Passes/Fusion/Passes.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "mlir/IR/Builders.h"

namespace qwen::fusion {
#define GEN_PASS_DEF_PLANBUFFERSPASS
#include "qwen/Passes/Fusion/Passes.h.inc"
} // namespace qwen::fusion

using namespace mlir;
using namespace qwen;

namespace {
struct Buffer {
  RankedTensorType type;
  std::string symbol;
  bool free = false;
};

struct PlanBuffersPass final
    : qwen::fusion::impl::PlanBuffersPassBase<PlanBuffersPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func->hasAttr(qkernel::kKernelAttrName))
      return;
    SmallVector<qkernel::LaunchOp> launches;
    func.walk([&](qkernel::LaunchOp launch) { launches.push_back(launch); });
    if (launches.empty())
      return;

    // Last reader of each launch result (the return counts as a reader).
    DenseMap<Value, Operation *> lastUse;
    for (qkernel::LaunchOp launch : launches)
      for (Value result : launch.getResults())
        for (Operation *user : result.getUsers())
          if (!lastUse.count(result) || lastUse[result]->isBeforeInBlock(user))
            lastUse[result] = user;

    std::vector<Buffer> buffers;
    DenseMap<Value, int64_t> bufferOf;
    Builder builder(&getContext());
    for (qkernel::LaunchOp launch : launches) {
      SmallVector<int64_t> assigned;
      for (Value result : launch.getResults()) {
        auto type = dyn_cast<RankedTensorType>(result.getType());
        if (!type) { // the KV cache is updated in place
          assigned.push_back(-1);
          continue;
        }
        std::string symbol = getLeadingSymbol(result);
        if (type.isDynamicDim(0) && symbol.empty()) {
          launch.emitOpError("cannot tell the size of result ")
              << result.getType();
          return signalPassFailure();
        }
        int64_t id = -1;
        for (auto [index, buffer] : llvm::enumerate(buffers))
          if (buffer.free && buffer.type == type && buffer.symbol == symbol) {
            id = index;
            break;
          }
        if (id < 0) {
          id = buffers.size();
          buffers.push_back({type, symbol});
        }
        buffers[id].free = false;
        bufferOf[result] = id;
        assigned.push_back(id);
      }
      launch.setResultBuffersAttr(builder.getDenseI64ArrayAttr(assigned));
      // Inputs whose last reader is this launch die here; freeing them only
      // now keeps a launch from writing a buffer it reads.
      for (Value operand : launch.getArgs())
        if (bufferOf.count(operand) && lastUse.lookup(operand) == launch)
          buffers[bufferOf[operand]].free = true;
      for (Value result : launch.getResults())
        if (bufferOf.count(result) && result.use_empty())
          buffers[bufferOf[result]].free = true;
    }

    SmallVector<Attribute> table;
    for (const Buffer &buffer : buffers)
      table.push_back(builder.getDictionaryAttr(
          {builder.getNamedAttr("type", TypeAttr::get(buffer.type)),
           builder.getNamedAttr("symbol", builder.getStringAttr(buffer.symbol))}));
    func->setAttr("qkernel.buffers", builder.getArrayAttr(table));
  }
};
} // namespace
