//===- KVWrite.cpp - KV-cache writes, for every target --------------------===//
//
// One work item per (token, kv head): the key chain (k_norm, rope) and the
// value row are built in a scratch row and stored into the token's cache
// page, rounded to the cache dtype.
//
// When fusion joined the attention's query chain (q_norm, rope) to the write
// (FormKernelRegions), the kernel also returns the query rows: its items are
// (token, kv head, unit), a unit one of the kv head's G query heads, building
// its row as a rows kernel does and storing it to the result, or the kv head
// itself. Query and kv items alternate so that the CPU's contiguous ranges
// of items get even work. Both chains walk head_dim columns with the same
// schedule, so each row is computed as by the separate kernels.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

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

  // The joined query chain: the one tensor result, [tokens, heads, head_dim].
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  Value query;
  unsigned queryResult = 0;
  for (auto [index, operand] : llvm::enumerate(ret.getOperands())) {
    if (!isa<RankedTensorType>(operand.getType()))
      continue;
    if (query)
      return source.emitOpError("kv_write kernel returns more than one query"), failure();
    query = computedValue(operand);
    queryResult = index;
  }
  int64_t queryHeads = 0;
  if (query) {
    auto type = cast<RankedTensorType>(query.getType());
    if (type.getRank() != 3 || type.getDimSize(2) != headDim)
      return source.emitOpError("kv_write kernel's query must be [tokens, heads, ")
                 << headDim << "]",
             failure();
    queryHeads = type.getDimSize(1);
    if (queryHeads % kvHeads != 0)
      return source.emitOpError("kv_write kernel's ") << queryHeads
                                                      << " query heads do not group over "
                                                      << kvHeads << " kv heads",
             failure();
  }
  const int64_t group = queryHeads / kvHeads, units = queryHeads + kvHeads;

  auto writeKeysAndValues = [&](Value token, Value head, Value row) {
    auto [keys, values] = t.kvRows(write.getCache());
    RowAccess positions = t.access(write.getPositions());
    RowAccess tokenSeq = t.access(write.getTokenSeq());
    RowAccess blockTable = t.access(write.getBlockTable());
    Value sequence = t.loadIndex(tokenSeq, token);
    Value position = t.loadIndex(positions, token);
    Value base = t.kvOffset(cache, layer, blockTable, t.mulIndex(sequence, t.dim("P")), position);
    Value headBase = t.addIndex(base, t.mulIndex(head, headDim));
    for (const auto &entry :
         {std::pair{write.getKeys(), keys}, std::pair{write.getValues(), values}}) {
      t.emitRowChain(entry.first, token, head, row);
      t.forLanes(headDim, width, [&](Value col) {
        t.store(entry.second, t.addIndex(headBase, col), t.loadScratch(row, col, width));
      });
    }
  };

  t.buildKernel(t.itemThreads(), [&](Value item) {
    Value token = t.divIndex(item, units);
    Value unit = t.remIndex(item, units);
    Value row = t.scratchRow(headDim);
    if (!query)
      return writeKeysAndValues(token, unit, row);
    // unit = kv head * (G + 1) + r: query head kv head * G + r for r < G,
    // else the kv head. The branch is uniform over an item's lanes, so the
    // barriers in each stay matched.
    ImplicitLocOpBuilder &b = t.builder();
    Value kvHead = t.divIndex(unit, group + 1);
    Value r = t.remIndex(unit, group + 1);
    Value isQuery = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, r, t.index(group));
    t.ifThen(isQuery, [&] {
      Value head = t.addIndex(t.mulIndex(kvHead, group), r);
      t.emitRowChain(query, token, head, row);
      RowAccess out = t.result(queryResult);
      Value base = t.address(out, token, head, Value());
      t.forLanes(headDim, width, [&](Value col) {
        t.store(out, t.addIndex(base, col), t.loadScratch(row, col, width));
      });
    });
    Value isKv = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, r, t.index(group));
    t.ifThen(isKv, [&] { writeKeysAndValues(token, kvHead, row); });
  });
  return t.gridOf(t.leadingSymbol(write.getPositions()), units);
}
