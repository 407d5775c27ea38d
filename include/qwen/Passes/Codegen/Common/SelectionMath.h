//===- SelectionMath.h - The top-k ordering of router and sampler -*- C++ -*-===//
//
// One ordering for every selection the kernels make (the MoE router's top-k
// on the CPU and the GPU, the sampler's argmax and top-k): larger value
// first, lower id on equal values, NaN never chosen.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_SELECTIONMATH_H
#define QWEN_PASSES_CODEGEN_COMMON_SELECTIONMATH_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace qwen::codegen {

/// A candidate of a selection: its f32 value and its id (an index, or an
/// exact f32 where ids travel through shuffles or shared memory).
struct Candidate {
  mlir::Value value, id;
};

/// Whether `a` comes before `best`: a larger value, or an equal value and a
/// lower id. NaN compares false both ways, so a NaN never comes first.
mlir::Value candidateBefore(mlir::ImplicitLocOpBuilder &b, Candidate a, Candidate best);

/// One step of a scan over candidates in increasing id: the candidate
/// replaces `best` when its value is strictly greater, so ties keep the
/// lowest id.
Candidate scanCandidate(mlir::ImplicitLocOpBuilder &b, Candidate best, mlir::Value value,
                        mlir::Value id);

/// `other` where it comes before `best` (candidateBefore), else `best`: the
/// merge of two partial selections in any order.
Candidate mergeCandidates(mlir::ImplicitLocOpBuilder &b, Candidate best, Candidate other);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_SELECTIONMATH_H
