//===- MultimodalEmbedding.cpp - token and image embedding rows -----------===//
//
// One work item per (token, column chunk), as the embedding kernel; a token
// whose image row is set copies that row of the image embeddings instead of
// its table row (bit for bit: HF's masked_scatter is a copy too).
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/MultimodalEmbedding.h"

#include "qwen/Dialect/QTF/IR/QTF.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<SmallVector<Attribute>> qwen::codegen::lowerMultimodalEmbeddingKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  Value output = ret.getNumOperands() == 1 ? computedValue(ret.getOperand(0)) : Value();
  auto embedding = output ? output.getDefiningOp<qtf::MultimodalEmbeddingOp>() : nullptr;
  if (!embedding)
    return source.emitOpError("multimodal embedding kernel must return one multimodal_embedding"),
           failure();
  const int64_t columns = embedding.getTable().getType().getDimSize(1);
  const ColumnPlan plan = t.planColumns(columns);

  t.buildKernel(plan.threads, [&](Value item) {
    RowAccess table = t.access(embedding.getTable());
    RowAccess ids = t.access(embedding.getIds());
    RowAccess imageRows = t.access(embedding.getImageRows());
    RowAccess images = t.access(embedding.getImageEmbeds());
    RowAccess out = t.result(0);
    ImplicitLocOpBuilder &b = t.builder();
    t.forColumns(plan, columns, item, [&](Value token, Value col) {
      Value image = t.loadIndex(imageRows, token);
      Value to = t.addIndex(t.mulIndex(token, columns), col);
      Value isImage = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, image, t.index(0));
      Value isText = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, image, t.index(0));
      t.ifThen(isImage, [&] {
        Value from = t.addIndex(t.mulIndex(image, columns), col);
        t.store(out, to, t.loadVectorF32(images, from, plan.width));
      });
      t.ifThen(isText, [&] {
        Value id = t.loadIndex(ids, token);
        Value from = t.addIndex(t.mulIndex(id, columns), col);
        t.store(out, to, t.loadVectorF32(table, from, plan.width));
      });
    });
  });
  return t.gridOf(t.leadingSymbol(output), plan.chunks);
}
