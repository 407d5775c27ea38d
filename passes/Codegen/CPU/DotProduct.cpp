//===- DotProduct.cpp - AVX512-BF16 register tiles ------------------------===//
#include "passes/Codegen/CPU/DotProduct.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

#include <algorithm>

using namespace mlir;
using namespace qwen::codegen::cpu;

using qwen::qkernel::DotKind;

int64_t qwen::codegen::cpu::bf16DotLanes(int64_t vectorWidth, int64_t k) {
  for (int64_t lanes : {16, 8, 4})
    if (lanes <= vectorWidth && k % (2 * lanes) == 0)
      return lanes;
  return 0;
}

static bool isBf16Dot(DotKind kind) {
  return kind == DotKind::Avx512Bf16Split || kind == DotKind::Avx512Bf16Round;
}

LogicalResult qwen::codegen::cpu::verifyDotKinds(func::FuncOp source,
                                                 qwen::qkernel::ScheduleAttr schedule, Type x,
                                                 Type w, int64_t k) {
  for (DotKind kind : {schedule.getDot(), schedule.getDecodeDot()}) {
    if (!isBf16Dot(kind))
      continue;
    if (!w.isBF16() || !(x.isF32() || x.isBF16()) ||
        bf16DotLanes(schedule.getVectorWidth(), k) == 0)
      return source.emitOpError("dot kind ")
             << qwen::qkernel::stringifyDotKind(kind)
             << " needs bf16 weights, f32 or bf16 activations and a reduction length the "
                "bf16 dot fits, got "
             << x << " x " << w << " over " << k;
  }
  return success();
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
  const int64_t lanes = bf16DotLanes(e.options().vectorWidth, k), pairs = 2 * lanes;
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
