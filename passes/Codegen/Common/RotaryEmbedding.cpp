//===- RotaryEmbedding.cpp - rotary_embedding, for every target -----------===//
//
// y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin on the pairs (i, i + d/2), with
// the row's cos / sin read from the tables the runtime computed (the vision
// tower's 2-D angles), one work item per (row, head).
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerRotaryEmbeddingKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::RotaryEmbeddingOp>(source, "rotary_embedding");
  if (failed(matched))
    return failure();
  qtf::RotaryEmbeddingOp rotary = matched->first;
  const unsigned output = matched->second;
  auto type = cast<RankedTensorType>(rotary.getResult().getType());
  const int64_t heads = type.getDimSize(1), headDim = type.getDimSize(2), half = headDim / 2;
  const int64_t width =
      t.rowWidth(half);

  t.buildKernel(t.itemThreads(), [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    RowAccess input = t.access(rotary.getInput()), cosTable = t.access(rotary.getCos()),
              sinTable = t.access(rotary.getSin()), out = t.result(output);
    Value token = t.divIndex(item, heads);
    Value head = t.remIndex(item, heads);
    Value inBase = t.address(input, token, head, Value());
    Value outBase = t.mulIndex(item, headDim);
    Value tableBase = t.address(cosTable, token, Value(), Value());
    Value sinBase = t.address(sinTable, token, Value(), Value());
    t.forLanes(half, width, [&](Value i) {
      Value j = t.addIndex(i, t.index(half));
      Value x1 = t.loadVectorF32(input, t.addIndex(inBase, i), width);
      Value x2 = t.loadVectorF32(input, t.addIndex(inBase, j), width);
      Value c = t.loadVectorF32(cosTable, t.addIndex(tableBase, i), width);
      Value s = t.loadVectorF32(sinTable, t.addIndex(sinBase, i), width);
      Value y1 = arith::SubFOp::create(b, arith::MulFOp::create(b, x1, c),
                                       arith::MulFOp::create(b, x2, s));
      Value y2 = arith::AddFOp::create(b, arith::MulFOp::create(b, x2, c),
                                       arith::MulFOp::create(b, x1, s));
      t.store(out, t.addIndex(outBase, i), y1);
      t.store(out, t.addIndex(outBase, j), y2);
    });
  });
  return t.gridOf(t.leadingSymbol(rotary.getResult()), heads);
}
