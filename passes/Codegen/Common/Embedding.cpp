//===- Embedding.cpp - embedding rows, for every target -------------------===//
//
// Table rows gathered by token id, one work item per (token, column chunk).
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/MultimodalEmbedding.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerEmbeddingKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  Value output = singleComputedResult(source);
  // Vision-language models: the same kind, with image rows (MultimodalEmbedding.cpp).
  if (output && output.getDefiningOp<qtf::MultimodalEmbeddingOp>())
    return lowerMultimodalEmbeddingKernel(t);
  auto embedding = output ? output.getDefiningOp<qtf::EmbeddingOp>() : nullptr;
  if (!embedding)
    return source.emitOpError("embedding kernel must return one embedding"), failure();
  const int64_t columns = embedding.getTable().getType().getDimSize(1);
  const ColumnPlan plan = t.planColumns(columns);

  t.buildKernel(plan.threads, [&](Value item) {
    RowAccess table = t.access(embedding.getTable());
    RowAccess ids = t.access(embedding.getIds());
    RowAccess out = t.result(0);
    t.forColumns(plan, columns, item, [&](Value token, Value col) {
      Value id = t.loadIndex(ids, token);
      Value from = t.addIndex(t.mulIndex(id, columns), col);
      Value to = t.addIndex(t.mulIndex(token, columns), col);
      t.store(out, to, t.loadVectorF32(table, from, plan.width));
    });
  });
  return t.gridOf(t.leadingSymbol(output), plan.chunks);
}
