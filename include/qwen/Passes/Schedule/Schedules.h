//===- Schedules.h - per-target schedule selection --------------*- C++ -*-===//
//
// The choices qwen-select-schedule makes, per target and kernel family, and
// the few shared-memory layout sizes both the choice and the GPU emitter
// need (a schedule must fit the layout the emitter then allocates).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_SCHEDULE_SCHEDULES_H
#define QWEN_PASSES_SCHEDULE_SCHEDULES_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace qwen::schedule {

struct CpuScheduleOptions {
  /// f32 lanes per vector (8: AVX2, 16: AVX-512).
  int64_t vectorWidth = 8;
  /// ISA extensions of the target, LLVM spelling ("avx512f", "avx512bf16").
  std::vector<std::string> cpuFeatures;
  /// How bf16 matmul tiles treat f32 activations on an AVX512-BF16 target
  /// (--bf16-activations): Off keeps f32 FMAs, Split dots one-token tiles in
  /// two bf16 parts (hi + lo), Round rounds them to bf16 on every tile, and
  /// Auto rounds them on every kernel but the precision-critical ones
  /// (`f32Kernels`), which keep f32 FMAs.
  enum class Bf16Activations { Off, Split, Round, Auto };
  Bf16Activations bf16Activations = Bf16Activations::Off;
  /// Kernels whose results decide logits or routing (the lm_head, the
  /// router's matmul): under Auto their dots keep f32 activations. They are
  /// a small share of the work, so rounding them would gain nothing.
  std::set<std::string> f32Kernels;
};

struct GpuScheduleOptions {
  /// Largest block of the row-wise kernels (and of the experts kernel).
  int64_t maxThreads = 256;
  /// Threads of one (token, head) attention block.
  int64_t attentionThreads = 256;
  /// Prefill attention tiles on tensor cores where the cache is bf16 / f16.
  bool mmaAttention = false;
  /// bf16 / f16 / f32 GEMMs get a generated GEMV as their decode variant
  /// (--gpu-gemv=generated); FP8 ones always do.
  bool generatedGemv = false;
};


/// The schedule of kernel function `kernel` (its kernelKind); emits an
/// error on `kernel` when its shapes admit none.
mlir::FailureOr<qkernel::ScheduleAttr> selectCpuSchedule(mlir::func::FuncOp kernel,
                                                         const CpuScheduleOptions &options);
mlir::FailureOr<qkernel::ScheduleAttr> selectGpuSchedule(mlir::func::FuncOp kernel,
                                                         const GpuScheduleOptions &options);

/// The matmul kernels of `top`'s kernel module whose results decide logits
/// or routing: those returned by @step (the lm_head) and those a router
/// kernel reads (the MoE gate, with whatever is stacked onto it).
std::set<std::string> selectF32ActivationKernels(mlir::ModuleOp top);

/// Whether `kernel`'s schedule rounds f32 activations to bf16 (a round dot
/// kind over an f32 input: not over activations that are bf16 already).
bool roundsF32Activations(mlir::func::FuncOp kernel, qkernel::ScheduleAttr schedule);

/// The schedules of the CUDA sampler kernels over logits rows of `vocab`
/// columns: qk_argmax's and qk_topk's (SamplerKernels.cpp).
std::pair<qkernel::ScheduleAttr, qkernel::ScheduleAttr>
selectSamplerSchedules(mlir::MLIRContext *ctx, int64_t vocab);

/// Static shared memory of one GPU block (no dynamic shared memory in the
/// launch contract).
inline constexpr int64_t kGpuSharedLimitBytes = 48 * 1024;

namespace deltarule {
/// Consecutive lanes per (i, j) pair of a chunk's dot products: the most
/// (up to a warp) that still give every pair of a chunk its own lanes.
inline int64_t pairLanes(int64_t chunk, int64_t threads) {
  int64_t lanes = 1;
  while (lanes < 32 && lanes * 2 * chunk * chunk <= threads)
    lanes *= 2;
  return lanes;
}

/// Row stride of the chunk's Q and K tiles: key_dim padded by the lanes per
/// pair, so that the pairs of a warp, which read different rows j at the
/// same column, hit different shared-memory banks.
inline int64_t qkStride(int64_t chunk, int64_t dk, int64_t threads) {
  return dk + pairLanes(chunk, threads);
}

/// Floats of the shared chunk buffer of the chunked delta rule with chunks
/// of `chunk` tokens: Q, K (decayed in place) [chunk][qkStride]; W
/// [chunk][key_dim]; U (then Vn) [chunk][value_dim]; L, A [chunk][chunk];
/// beta, gamma [chunk].
inline int64_t chunkBufferFloats(int64_t chunk, int64_t dk, int64_t dv, int64_t threads) {
  return 2 * chunk * qkStride(chunk, dk, threads) + chunk * dk + chunk * dv +
         2 * chunk * chunk + 2 * chunk;
}
} // namespace deltarule

} // namespace qwen::schedule

#endif // QWEN_PASSES_SCHEDULE_SCHEDULES_H
