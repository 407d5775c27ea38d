//===- DotProduct.cpp - AVX512-BF16 register tiles ------------------------===//
#include "passes/Codegen/CPU/DotProduct.h"

#include "qwen/Passes/Codegen/Common/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
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
  // the dot latency hidden when a decode tile has few accumulators.
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

//===----------------------------------------------------------------------===//
// Block-wise FP8 weights
//===----------------------------------------------------------------------===//

/// The f32 of e4m3fn `raw` (i8 or a vector of i8) times `factor` / 2^120:
/// the fp8 fields moved into f32's read as value * 2^-120, normals and
/// subnormals alike (see codegen::widenToF32, which multiplies by 2^120).
/// With factor = scale * 2^120 (exact: a power of two, finite for any scale
/// below 2^8) the product is fp8 * scale rounded once, as HF dequantizes.
static Value widenFp8Scaled(ImplicitLocOpBuilder &b, Value raw, Value factor) {
  auto vector = dyn_cast<VectorType>(raw.getType());
  auto like = [&](Type scalar) -> Type {
    return vector ? Type(VectorType::get(vector.getShape(), scalar)) : scalar;
  };
  Type i32 = like(b.getI32Type()), f32 = like(b.getF32Type());
  auto constant = [&](uint32_t bits) -> Value {
    Attribute value = b.getI32IntegerAttr(int32_t(bits));
    return arith::ConstantOp::create(
        b, vector ? TypedAttr(DenseElementsAttr::get(cast<ShapedType>(i32), value))
                  : cast<TypedAttr>(value));
  };
  Value wide = arith::ExtSIOp::create(b, i32, raw); // the sign lands in bit 31
  Value shifted = arith::ShLIOp::create(b, wide, constant(20));
  Value fields = arith::AndIOp::create(b, shifted, constant(0x87f00000u));
  Value bits = arith::BitcastOp::create(b, f32, fields);
  if (vector)
    factor = vector::BroadcastOp::create(b, f32, factor);
  return arith::MulFOp::create(b, bits, factor);
}

SmallVector<Value> qwen::codegen::cpu::emitFp8DotTile(KernelEmitter &e, const RowAccess &x,
                                                      ArrayRef<Value> xBases, const RowAccess &w,
                                                      ArrayRef<Value> wBases,
                                                      const Fp8Weights &fp8, int64_t k) {
  ImplicitLocOpBuilder &b = e.builder();
  const int64_t mc = xBases.size(), nc = wBases.size();
  const int64_t br = fp8.block[0], bc = fp8.block[1];
  const int64_t blockColumns = (k + bc - 1) / bc;
  const int64_t fullBlocks = k / bc, rest = k % bc;
  Type i8 = b.getI8Type();
  Value twoTo120 = arith::ConstantOp::create(b, b.getF32FloatAttr(0x1p120f));

  // scale[row / br, kb] * 2^120 of every weight row of the tile.
  auto factors = [&](Value kb) {
    SmallVector<Value> out;
    for (Value row : fp8.wRows) {
      Value blockRow = arith::DivUIOp::create(b, row, e.index(br));
      Value at = e.addIndex(e.mulIndex(blockRow, blockColumns), kb);
      out.push_back(arith::MulFOp::create(b, e.loadF32(fp8.scale, at), twoTo120));
    }
    return out;
  };

  // Vector FMAs over columns [k0, k0 + length) (a multiple of `width`) with
  // one block's factors, into the carried `width`-lane accumulators.
  auto vectorDot = [&](Value k0, int64_t length, int64_t width, ArrayRef<Value> factor,
                       ValueRange accumulators) -> SmallVector<Value> {
    auto rawType = VectorType::get({width}, i8);
    return SmallVector<Value>(e.forLoop(
        k0, e.addIndex(k0, e.index(length)), width, accumulators,
        [&](Value kk, ValueRange carried) -> SmallVector<Value> {
          SmallVector<Value> wv, xv, next;
          for (int64_t j = 0; j < nc; ++j) {
            Value raw = vector::LoadOp::create(b, rawType, w.memref,
                                               ValueRange{e.addIndex(wBases[j], kk)});
            wv.push_back(widenFp8Scaled(b, raw, factor[j]));
          }
          for (int64_t i = 0; i < mc; ++i)
            xv.push_back(e.loadVectorF32(x, e.addIndex(xBases[i], kk), width));
          for (int64_t i = 0; i < mc; ++i)
            for (int64_t j = 0; j < nc; ++j)
              next.push_back(vector::FMAOp::create(b, xv[i], wv[j], carried[i * nc + j]));
          return next;
        }));
  };
  auto zeros = [&](int64_t width) {
    auto type = VectorType::get({width}, b.getF32Type());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(type, 0.0f));
    return SmallVector<Value>(mc * nc, zero);
  };
  auto addReduced = [&](SmallVector<Value> &sums, ValueRange accumulators) {
    for (int64_t slot = 0; slot < mc * nc; ++slot)
      sums[slot] = arith::AddFOp::create(
          b, sums[slot],
          vector::ReductionOp::create(b, vector::CombiningKind::ADD, accumulators[slot]));
  };

  Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
  SmallVector<Value> sums(mc * nc, zero);
  // Whole column blocks: the accumulators run across blocks, reduced once.
  if (fullBlocks > 0) {
    const int64_t width = e.rowWidth(bc); // divides bc
    SmallVector<Value> acc(e.forLoop(
        e.index(0), e.index(fullBlocks), 1, zeros(width),
        [&](Value kb, ValueRange carried) -> SmallVector<Value> {
          return vectorDot(e.mulIndex(kb, bc), bc, width, factors(kb), carried);
        }));
    addReduced(sums, acc);
  }
  if (rest == 0)
    return sums;
  // The ragged last column block (k not a multiple of the block columns).
  Value k0 = e.index(fullBlocks * bc);
  SmallVector<Value> factor = factors(e.index(fullBlocks));
  const int64_t width = e.rowWidth(rest); // divides rest
  if (width > 1) {
    addReduced(sums, vectorDot(k0, rest, width, factor, zeros(width)));
    return sums;
  }
  return SmallVector<Value>(e.forLoop(
      k0, e.addIndex(k0, e.index(rest)), 1, sums,
      [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> next;
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j) {
            Value xs = e.loadF32(x, e.addIndex(xBases[i], kk));
            Value raw =
                memref::LoadOp::create(b, w.memref, ValueRange{e.addIndex(wBases[j], kk)});
            Value ws = widenFp8Scaled(b, raw, factor[j]);
            next.push_back(math::FmaOp::create(b, xs, ws, carried[i * nc + j]));
          }
        return next;
      }));
}
