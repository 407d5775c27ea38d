//===- KVWrite.cpp - KV-cache writes, for every target --------------------===//
//
// One work item per (token, kv head): the key chain (k_norm, rope) and the
// value row are built in a scratch row and stored into the token's cache
// page, rounded to the cache dtype.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerKVWriteKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  qtf::KVCacheWriteOp write;
  source.walk([&](qtf::KVCacheWriteOp op) { write = op; });
  if (!write)
    return source.emitOpError("kv_write kernel has no kv_cache_write"), failure();
  qtf::KVCacheType cache = write.getCache().getType();
  const int64_t kvHeads = cache.getKvHeads(), headDim = cache.getHeadDim();
  const int64_t layer = write.getLayer();
  const int64_t width = t.rowWidth(headDim);

  t.buildKernel(t.itemThreads(), [&](Value item) {
    Value token = t.divIndex(item, kvHeads);
    Value head = t.remIndex(item, kvHeads);
    auto [keys, values] = t.kvRows(write.getCache());
    RowAccess positions = t.access(write.getPositions());
    RowAccess tokenSeq = t.access(write.getTokenSeq());
    RowAccess blockTable = t.access(write.getBlockTable());
    Value sequence = t.loadIndex(tokenSeq, token);
    Value position = t.loadIndex(positions, token);
    Value base = t.kvOffset(cache, layer, blockTable, t.mulIndex(sequence, t.dim("P")), position);
    Value headBase = t.addIndex(base, t.mulIndex(head, headDim));
    Value row = t.scratchRow(headDim);
    for (const auto &entry :
         {std::pair{write.getKeys(), keys}, std::pair{write.getValues(), values}}) {
      t.emitRowChain(entry.first, token, head, row);
      t.forLanes(headDim, width, [&](Value col) {
        t.store(entry.second, t.addIndex(headBase, col), t.loadScratch(row, col, width));
      });
    }
  });
  return t.gridOf(t.leadingSymbol(write.getPositions()), kvHeads);
}

void qwen::codegen::populateKVWritePatterns(RewritePatternSet &patterns,
                                            TargetLowering &lowering) {
  patterns.add<FamilyPattern>(patterns.getContext(), qkernel::KernelKind::KVWrite,
                              lowerKVWriteKernel, lowering);
}
