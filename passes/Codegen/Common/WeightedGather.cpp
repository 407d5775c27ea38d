//===- WeightedGather.cpp - weighted_gather rows, for every target --------===//
//
// result[t] = sum_j weights[t][j] * table[indices[t][j]], taps in order, one
// work item per (row, column chunk) (the interpolated position embeddings).
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerWeightedGatherKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::WeightedGatherOp>(source, "weighted_gather");
  if (failed(matched))
    return failure();
  qtf::WeightedGatherOp gather = matched->first;
  const unsigned output = matched->second;
  const int64_t columns = gather.getTable().getType().getDimSize(1);
  const int64_t taps = gather.getIndices().getType().getDimSize(1);
  const ColumnPlan plan = t.planColumns(columns);

  t.buildKernel(plan.threads, [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    auto vecType = VectorType::get({plan.width}, b.getF32Type());
    RowAccess table = t.access(gather.getTable()), indices = t.access(gather.getIndices()),
              weights = t.access(gather.getWeights()), out = t.result(output);
    t.forColumns(plan, columns, item, [&](Value row, Value col) {
      Value sum;
      for (int64_t j = 0; j < taps; ++j) {
        Value at = t.addIndex(t.mulIndex(row, taps), t.index(j));
        Value id = t.loadIndex(indices, at);
        Value w = vector::BroadcastOp::create(b, vecType, t.loadF32(weights, at));
        Value value =
            t.loadVectorF32(table, t.addIndex(t.mulIndex(id, columns), col), plan.width);
        Value term = arith::MulFOp::create(b, value, w);
        sum = sum ? arith::AddFOp::create(b, sum, term).getResult() : term;
      }
      t.store(out, t.addIndex(t.mulIndex(row, columns), col), sum);
    });
  });
  return t.gridOf(t.leadingSymbol(gather.getResult()), plan.chunks);
}
