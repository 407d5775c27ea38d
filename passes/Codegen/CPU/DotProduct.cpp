//===- DotProduct.cpp - AVX512-BF16 register tiles ------------------------===//
#include "passes/Codegen/CPU/DotProduct.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

#include <algorithm>

using namespace mlir;
using namespace qwen::codegen::cpu;

static bool hasFeature(const CpuCodegenOptions &options, StringRef feature) {
  return llvm::is_contained(options.cpuFeatures, feature);
}

StringRef qwen::codegen::cpu::stringifyDotKind(DotKind kind) {
  switch (kind) {
  case DotKind::Fma: return "fma";
  case DotKind::Avx512Bf16Split: return "avx512bf16-split";
  case DotKind::Avx512Bf16Round: return "avx512bf16-round";
  }
  llvm_unreachable("unknown dot kind");
}

int64_t qwen::codegen::cpu::bf16DotLanes(const CpuCodegenOptions &options, int64_t k) {
  if (!hasFeature(options, "avx512bf16") || !hasFeature(options, "avx512f"))
    return 0;
  // 512-bit vdpbf16ps needs avx512f only; the 256 / 128-bit forms need avx512vl.
  for (int64_t lanes : {16, 8, 4}) {
    if (lanes > options.vectorWidth || k % (2 * lanes) != 0)
      continue;
    if (lanes < 16 && !hasFeature(options, "avx512vl"))
      continue;
    return lanes;
  }
  return 0;
}

DotKind qwen::codegen::cpu::selectDotKind(const CpuCodegenOptions &options, Type xElement,
                                          Type wElement, int64_t k, int64_t tokens) {
  if (!wElement.isBF16() || !(xElement.isF32() || xElement.isBF16()) ||
      bf16DotLanes(options, k) == 0)
    return DotKind::Fma;
  // bf16 activations are exact in either kind; the split costs a second dot.
  if (xElement.isBF16() || options.bf16Activations == Bf16Activations::Round)
    return DotKind::Avx512Bf16Round;
  // Split: two dots per 32 products, as many instructions as f32 FMAs, so it
  // wins only where it saves the weight widening without adding much: a
  // one-token (decode) tile splits one activation vector for 4 weight rows.
  // A 4-token tile would split 4 vectors for 2 weight rows, costing more than
  // the widening it saves (prefill measured 1.8x slower), so it keeps FMAs.
  return tokens == 1 ? DotKind::Avx512Bf16Split : DotKind::Fma;
}

/// `count` elements at `flatIndex` as a bf16 vector: bf16 storage is
/// reinterpreted, f32 is rounded to nearest even (vcvtneps2bf16).
static Value loadBf16(KernelEmitter &e, const RowAccess &access, Value flatIndex, int64_t count) {
  ImplicitLocOpBuilder &b = e.builder();
  auto bf16Type = VectorType::get({count}, b.getBF16Type());
  if (access.elementType.isBF16()) {
    auto rawType = VectorType::get({count}, b.getI16Type());
    Value raw = vector::LoadOp::create(b, rawType, access.memref, ValueRange{flatIndex});
    return arith::BitcastOp::create(b, bf16Type, raw);
  }
  auto f32Type = VectorType::get({count}, b.getF32Type());
  Value wide = vector::LoadOp::create(b, f32Type, access.memref, ValueRange{flatIndex});
  return arith::TruncFOp::create(b, bf16Type, wide);
}

SmallVector<Value> qwen::codegen::cpu::emitBf16DotTile(KernelEmitter &e, DotKind kind,
                                                       const RowAccess &x, ArrayRef<Value> xBases,
                                                       const RowAccess &w, ArrayRef<Value> wBases,
                                                       int64_t k) {
  ImplicitLocOpBuilder &b = e.builder();
  const int64_t mc = xBases.size(), nc = wBases.size();
  const int64_t lanes = bf16DotLanes(e.options(), k), pairs = 2 * lanes;
  const bool split = kind == DotKind::Avx512Bf16Split && x.elementType.isF32();
  // The lo parts accumulate separately: twice the independent chains keeps
  // the dot latency hidden when a decode tile has only 4 accumulators.
  const int64_t parts = split ? 2 : 1;
  auto accType = VectorType::get({lanes}, b.getF32Type());
  auto f32Pairs = VectorType::get({pairs}, b.getF32Type());
  auto bf16Pairs = VectorType::get({pairs}, b.getBF16Type());
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(accType, 0.0f));
  SmallVector<Value> init(parts * mc * nc, zero);
  ValueRange acc = e.forLoop(
      e.index(0), e.index(k), pairs, init, [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> wv, xv, next(carried.begin(), carried.end());
        for (int64_t j = 0; j < nc; ++j)
          wv.push_back(loadBf16(e, w, e.addIndex(wBases[j], kk), pairs));
        for (int64_t i = 0; i < mc; ++i) {
          Value at = e.addIndex(xBases[i], kk);
          if (!split) {
            xv.push_back(loadBf16(e, x, at, pairs));
            continue;
          }
          Value wide = vector::LoadOp::create(b, f32Pairs, x.memref, ValueRange{at});
          Value hi = arith::TruncFOp::create(b, bf16Pairs, wide);
          Value rest = arith::SubFOp::create(b, wide, arith::ExtFOp::create(b, f32Pairs, hi));
          xv.push_back(hi);
          xv.push_back(arith::TruncFOp::create(b, bf16Pairs, rest));
        }
        for (int64_t part = 0; part < parts; ++part)
          for (int64_t i = 0; i < mc; ++i)
            for (int64_t j = 0; j < nc; ++j) {
              int64_t slot = (part * mc + i) * nc + j;
              next[slot] = x86vector::DotBF16Op::create(b, accType, carried[slot],
                                                        xv[i * parts + part], wv[j]);
            }
        return next;
      });
  SmallVector<Value> sums;
  for (int64_t slot = 0; slot < mc * nc; ++slot) {
    Value total = acc[slot];
    if (split)
      total = arith::AddFOp::create(b, total, acc[mc * nc + slot]);
    sums.push_back(vector::ReductionOp::create(b, vector::CombiningKind::ADD, total));
  }
  return sums;
}
