//===- NarrowGemmInputs.cpp - GEMM activations stored in the weight dtype -===//
//
// cuBLASLt takes A and B in one dtype, so a bf16 GEMM fed f32 activations
// needs them converted, and qwen-gpu-lower-kernels would add a `_pack`
// kernel in front of every such GEMM launch (a launch, and an f32 write and
// read, per GEMM: on a small model's decode step most of its kernels are
// that small). This pass moves the rounding into the producer instead: a
// rows, elementwise or attention kernel whose result feeds only matmul
// kernels, as their activations, returns it through an arith.truncf to the
// weight dtype. The GPU emitters compute in f32 as before and round to
// nearest even when they store, as the pack kernel did, so the numerics are
// unchanged; the matmul kernels take the narrow dtype and need no pack.
//
// Decisions are per kernel function (a function is launched by many
// layers): a producer is narrowed only if every launch of it qualifies, and
// a matmul kernel only if every launch of it reads a narrowed producer.
//
//===----------------------------------------------------------------------===//

#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

#include "llvm/ADT/MapVector.h"

namespace qwen::codegen::gpu {
#define GEN_PASS_DEF_GPUNARROWGEMMINPUTSPASS
#include "qwen/Passes/Codegen/GPU/Passes.h.inc"
} // namespace qwen::codegen::gpu

using namespace mlir;
using namespace qwen;

namespace {

/// A matmul kernel that can take its activations narrow: argument `xArg`
/// reaches the linear directly or through reshapes and a row gather (whose
/// pack then only gathers), used nowhere else.
struct NarrowableMatmul {
  unsigned xArg = 0;
  Type weightElement;
  SmallVector<Operation *> views; ///< between the argument and the linear
};

std::optional<NarrowableMatmul> narrowableMatmul(func::FuncOp func) {
  if (qkernel::getKernelKind(func) != qkernel::KernelKind::Matmul || func.isDeclaration())
    return std::nullopt;
  qtf::LinearOp linear;
  unsigned linears = 0;
  func.walk([&](qtf::LinearOp op) {
    linear = op;
    ++linears;
  });
  if (linears != 1)
    return std::nullopt;
  NarrowableMatmul info;
  info.weightElement = linear.getWeight().getType().getElementType();
  if (!info.weightElement.isBF16() && !info.weightElement.isF16())
    return std::nullopt;
  Value x = linear.getInput();
  while (Operation *view = x.getDefiningOp()) {
    if (!x.hasOneUse())
      return std::nullopt;
    if (auto reshape = dyn_cast<qtf::ReshapeOp>(view))
      x = reshape.getInput();
    else if (auto gather = dyn_cast<qtf::GatherRowsOp>(view))
      x = gather.getInput();
    else
      return std::nullopt;
    info.views.push_back(view);
  }
  auto arg = dyn_cast<BlockArgument>(x);
  if (!arg || !arg.hasOneUse() || !cast<RankedTensorType>(arg.getType()).getElementType().isF32())
    return std::nullopt;
  info.xArg = arg.getArgNumber();
  return info;
}

/// The one f32 tensor result of a rows, elementwise or attention kernel.
bool isNarrowableProducer(func::FuncOp func) {
  using qkernel::KernelKind;
  std::optional<KernelKind> kind = qkernel::getKernelKind(func);
  if (func.isDeclaration() ||
      (kind != KernelKind::Rows && kind != KernelKind::Elementwise && kind != KernelKind::Attention))
    return false;
  if (func.getNumResults() != 1)
    return false;
  auto type = dyn_cast<RankedTensorType>(func.getResultTypes()[0]);
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  return type && type.getElementType().isF32() && !isa<BlockArgument>(ret.getOperand(0));
}

RankedTensorType withElement(Type type, Type element) {
  auto tensor = cast<RankedTensorType>(type);
  return RankedTensorType::get(tensor.getShape(), element);
}

void updateFunctionType(func::FuncOp func) {
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  func.setType(FunctionType::get(func.getContext(), func.getBody().front().getArgumentTypes(),
                                 ret.getOperandTypes()));
}

struct GpuNarrowGemmInputsPass final
    : qwen::codegen::gpu::impl::GpuNarrowGemmInputsPassBase<GpuNarrowGemmInputsPass> {
  void runOnOperation() override {
    ModuleOp top = getOperation();
    SymbolTableCollection symbols;
    llvm::MapVector<func::FuncOp, SmallVector<qkernel::LaunchOp>> launches;
    top.walk([&](qkernel::LaunchOp launch) {
      if (auto callee = symbols.lookupNearestSymbolFrom<func::FuncOp>(launch, launch.getKernel()))
        launches[callee].push_back(launch);
    });
    auto calleeOf = [&](Operation *op) -> func::FuncOp {
      auto launch = dyn_cast_or_null<qkernel::LaunchOp>(op);
      return launch ? symbols.lookupNearestSymbolFrom<func::FuncOp>(launch, launch.getKernel())
                    : func::FuncOp();
    };

    llvm::MapVector<func::FuncOp, NarrowableMatmul> matmuls;
    llvm::MapVector<func::FuncOp, Type> producers; ///< -> the dtype it stores
    for (auto &[func, uses] : launches) {
      if (std::optional<NarrowableMatmul> info = narrowableMatmul(func))
        matmuls[func] = *info;
      else if (isNarrowableProducer(func))
        producers[func] = Type();
    }

    // Drop candidates until every producer feeds only kept matmuls (as their
    // activations, all of one weight dtype) and every kept matmul reads only
    // kept producers.
    for (bool changed = true; changed;) {
      SmallVector<func::FuncOp> droppedProducers, droppedMatmuls;
      for (auto &[producer, stored] : producers) {
        Type element;
        bool keep = true;
        for (qkernel::LaunchOp launch : launches[producer])
          for (OpOperand &use : launch.getResult(0).getUses()) {
            func::FuncOp consumer = calleeOf(use.getOwner());
            auto it = consumer ? matmuls.find(consumer) : matmuls.end();
            if (it == matmuls.end() || use.getOperandNumber() != it->second.xArg ||
                (element && element != it->second.weightElement)) {
              keep = false;
              break;
            }
            element = it->second.weightElement;
          }
        if (keep && element)
          stored = element;
        else
          droppedProducers.push_back(producer);
      }
      for (func::FuncOp producer : droppedProducers)
        producers.erase(producer);
      for (auto &[matmul, info] : matmuls) {
        const unsigned xArg = info.xArg;
        if (!llvm::all_of(launches[matmul], [&](qkernel::LaunchOp launch) {
              return producers.contains(calleeOf(launch.getArgs()[xArg].getDefiningOp()));
            }))
          droppedMatmuls.push_back(matmul);
      }
      for (func::FuncOp matmul : droppedMatmuls)
        matmuls.erase(matmul);
      changed = !droppedProducers.empty() || !droppedMatmuls.empty();
    }

    for (auto &[producer, element] : producers) {
      auto ret = cast<func::ReturnOp>(producer.getBody().front().getTerminator());
      OpBuilder builder(ret);
      Value computed = ret.getOperand(0);
      Value stored = arith::TruncFOp::create(builder, ret.getLoc(),
                                             withElement(computed.getType(), element), computed);
      ret.setOperand(0, stored);
      updateFunctionType(producer);
      for (qkernel::LaunchOp launch : launches[producer])
        launch.getResult(0).setType(withElement(launch.getResult(0).getType(), element));
    }
    for (auto &[matmul, info] : matmuls) {
      BlockArgument arg = matmul.getArgument(info.xArg);
      arg.setType(withElement(arg.getType(), info.weightElement));
      for (Operation *view : info.views)
        view->getResult(0).setType(withElement(view->getResult(0).getType(), info.weightElement));
      updateFunctionType(matmul);
    }
  }
};

} // namespace
