//===- QKernelSchedule.h - kernel schedules ---------------------*- C++ -*-===//
//
// `#qkernel.schedule` (QKernelSchedule.td) and the accessors codegen reads
// it through. Included by QKernel.h, after the generated attribute classes.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_DIALECT_QKERNEL_IR_QKERNELSCHEDULE_H
#define QWEN_DIALECT_QKERNEL_IR_QKERNELSCHEDULE_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"


namespace qwen::qkernel {
/// Discardable attribute of a kernel function holding its ScheduleAttr.
inline constexpr llvm::StringLiteral kScheduleAttrName = "qkernel.schedule";

/// On @step (cuda): the schedules of the sampler kernels, a dictionary
/// `{argmax = #qkernel.schedule<...>, topk = #qkernel.schedule<...>}`.
inline constexpr llvm::StringLiteral kSamplerScheduleAttrName = "qkernel.sampler_schedule";

/// On @step (cpu): the element type (a TypeAttr, bf16) the f32 activations
/// of some matmul / experts tiles are rounded to (dot avx512_bf16_round);
/// absent when every GEMM takes its activations unrounded. The manifest's
/// `target.gemm_activations`.
inline constexpr llvm::StringLiteral kGemmActivationsAttrName = "qkernel.gemm_activations";

/// The schedule qwen-select-schedule attached to `kernel` (null if none).
ScheduleAttr getSchedule(mlir::Operation *kernel);
/// The schedule of `kernel` for `target`; emits an error on `kernel` and
/// fails when it has none or one for another target.
mlir::FailureOr<ScheduleAttr> requireSchedule(mlir::Operation *kernel, ScheduleTarget target);
} // namespace qwen::qkernel

#endif // QWEN_DIALECT_QKERNEL_IR_QKERNELSCHEDULE_H
