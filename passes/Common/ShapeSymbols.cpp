//===- ShapeSymbols.cpp - Symbolic leading dimensions ---------------------===//
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;

int qwen::stepSymbolIndex(llvm::StringRef symbol) {
  for (auto [index, name] : llvm::enumerate(kStepSymbols))
    if (name == symbol)
      return static_cast<int>(index);
  return -1;
}

/// The symbol of a step input, named by its `qtf.input` argument attribute.
static std::string symbolOfInput(llvm::StringRef input) {
  if (input == "tokens" || input == "positions" || input == "token_seq" ||
      input == "mrope_positions" || input == "image_rows" || input == "image_embeds")
    return "T";
  if (input == "block_table" || input == "state_slots")
    return "B";
  if (input == "logit_rows")
    return "R";
  // The vision program (qwen-compile --vision): T counts its patches.
  if (input == "pixel_values" || input == "pos_indices" || input == "pos_weights" ||
      input == "rope_cos" || input == "rope_sin" || input == "segment_bounds")
    return "T";
  return "";
}

std::string qwen::getLeadingSymbol(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || type.getRank() == 0 || !type.isDynamicDim(0))
    return "";
  if (auto arg = dyn_cast<BlockArgument>(value)) {
    Operation *parent = arg.getOwner()->getParentOp();
    auto func = dyn_cast<func::FuncOp>(parent);
    if (!func)
      return "";
    if (auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                       "qtf.input"))
      return symbolOfInput(name.getValue());
    // A kernel argument: its recorded symbol, else the operand of the first
    // launch.
    if (!func->hasAttr(qkernel::kKernelAttrName))
      return "";
    if (auto symbol = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                        "qkernel.symbol"))
      return symbol.str();
    auto kernels = func->getParentOfType<ModuleOp>();
    auto top = kernels ? kernels->getParentOfType<ModuleOp>() : ModuleOp();
    if (!top)
      return "";
    std::string found;
    top.walk([&](qkernel::LaunchOp launch) {
      if (found.empty() &&
          launch.getKernel().getLeafReference() == func.getSymName())
        found = getLeadingSymbol(launch.getArgs()[arg.getArgNumber()]);
    });
    return found;
  }
  Operation *op = value.getDefiningOp();
  if (auto embedding = dyn_cast<qtf::EmbeddingOp>(op))
    return getLeadingSymbol(embedding.getIds());
  if (auto embedding = dyn_cast<qtf::MultimodalEmbeddingOp>(op))
    return getLeadingSymbol(embedding.getIds());
  if (auto gather = dyn_cast<qtf::GatherRowsOp>(op))
    return getLeadingSymbol(gather.getRows());
  if (auto gather = dyn_cast<qtf::WeightedGatherOp>(op))
    return getLeadingSymbol(gather.getIndices());
  // The vision program's merged rows (patches / merge^2) are its "R".
  if (isa<qtf::MergeRowsOp>(op))
    return "R";
  if (auto region = dyn_cast<qkernel::RegionOp>(op)) {
    auto yield = cast<qkernel::YieldOp>(region.getBody().front().getTerminator());
    return getLeadingSymbol(
        yield.getValues()[cast<OpResult>(value).getResultNumber()]);
  }
  if (auto launch = dyn_cast<qkernel::LaunchOp>(op)) {
    auto func = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
        launch, launch.getKernel());
    if (!func)
      return "";
    // A kernel whose body went to another module (GPU codegen) keeps its
    // result symbols as attributes.
    if (func.isDeclaration()) {
      auto symbol = func.getResultAttrOfType<StringAttr>(
          cast<OpResult>(value).getResultNumber(), "qkernel.symbol");
      return symbol ? symbol.str() : "";
    }
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    return getLeadingSymbol(
        ret.getOperands()[cast<OpResult>(value).getResultNumber()]);
  }
  // Every other op keeps the leading dimension of its first ranked operand.
  for (Value operand : op->getOperands())
    if (isa<RankedTensorType>(operand.getType()))
      return getLeadingSymbol(operand);
  return "";
}
