//===- GpuKernelEmitter.h - Shared GPU kernel emission helpers --*- C++ -*-===//
//
// A kernel function produced by outlining (tensor arguments, qtf ops inside)
// becomes a `gpu.func ... kernel` in `gpu.module @qwen_kernels`. Its GPU ABI
// mirrors the CPU one (docs/ARTIFACT.md) with the indirection removed:
//
//   kernel NAME(ptr slot0, ptr slot1, ..., i64 T, i64 B, i64 P, i64 R)
//
// one generic `!llvm.ptr` (to global memory, 16-byte aligned) per ABI slot
// in CPU order: the arguments (a KV cache is two slots, keys then values; a
// linear-attention state is two slots, conv windows then recurrent states),
// then one slot per tensor result (a cache or state result has none: it is
// written in place). GpuKernelEmitter creates that function, binds each
// slot to a flat memref (codegen::KernelTarget, whose GPU implementation it
// is), and offers the block-level building blocks: thread-strided row loops,
// aligned vector loads that widen bf16 / f16 to f32, warp-shuffle +
// shared-memory reductions, shared rows and barriers.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_GPU_GPUKERNELEMITTER_H
#define QWEN_PASSES_CODEGEN_GPU_GPUKERNELEMITTER_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"
#include "qwen/Passes/Codegen/Common/KernelTarget.h"
#include "qwen/Passes/Codegen/GPU/KernelPatterns.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <functional>

namespace qwen::codegen::gpu {

/// Threads of a warp (shuffles, subgroup reductions, warp-per-row kernels).
inline constexpr int64_t kWarpSize = 32;

struct GpuCodegenOptions {
  /// The kernel's #qkernel.schedule (qwen-select-schedule; the sampler's
  /// are on @step).
  qkernel::ScheduleAttr schedule;
  /// Threads per block: the schedule's (the row families' block, the
  /// router's and the GEMM pack kernel's largest).
  int64_t maxThreads = 256;
  /// Convert GEMM activations to the weight dtype before cuBLASLt.
  bool convertGemmInputs = true;
};

using codegen::RowAccess;

/// Another kernel launched in place of, or after, a program kernel: its
/// gpu.func name (empty: none), grid, threads and static shared memory.
struct VariantGeometry {
  std::string kernel = {};
  llvm::SmallVector<mlir::Attribute> grid = {};
  int64_t blockSize = 0;
  int64_t sharedBytes = 0;
};

/// Launch geometry of one generated kernel: `grid` factors (step symbols and
/// integers) multiply to the number of blocks, `blockSize` threads each.
struct KernelGeometry {
  llvm::SmallVector<mlir::Attribute> grid;
  int64_t blockSize = 0;
  int64_t sharedBytes = 0;
  /// A variant of the kernel the runtime launches instead for decode-only
  /// steps (every request has one token, T == B). Recorded as the launch
  /// attribute's `decode`.
  VariantGeometry decode = {};
  /// Split-K over the context (flash-decoding): the decode variant takes
  /// two more parameters (a partials array after the slots, the split count
  /// after the step sizes) and runs `decode.grid` x splits blocks; with
  /// splits > 1 each block writes its partial softmax state and `combine`
  /// (same parameters) merges them. Recorded as the launch attribute's
  /// `max_splits`, `partial_floats`, `combine` and `split_keys`.
  int64_t decodeMaxSplits = 0;
  int64_t decodePartialFloats = 0; ///< floats of partials per (token, split)
  int64_t decodeSplitKeys = 0;     ///< fewest context positions per split
  VariantGeometry combine = {};
};

/// Parameters of a kernel beyond the ABI's slots and step sizes: `pointers`
/// f32 arrays after the slots, `scalars` i64 values after T, B, P, R.
struct ExtraParams {
  unsigned pointers = 0;
  unsigned scalars = 0;
};

/// Row-parallel kernels without reduction: one block per (row, chunk), each
/// thread one vector of `width` columns.
using ChunkPlan = codegen::ColumnPlan;

/// The GPU implementation of the kernel target: one work item is one block
/// of threads; the lanes of a row are its threads.
class GpuKernelEmitter : public codegen::KernelTarget {
public:
  /// Every op the emitter builds goes through `rewriter` (its listener
  /// hears of it): the emitter runs inside a kernel pattern.
  GpuKernelEmitter(mlir::gpu::GPUModuleOp gpuModule, mlir::func::FuncOp source,
                   const GpuCodegenOptions &options, mlir::RewriterBase &rewriter);

  /// Creates `gpu.func @name` whose slots are those of `args` (arguments of
  /// the source function, in order) and of the tensor types in `results`,
  /// with a static block of `blockSize` threads. `body` runs with the
  /// builder at the start of the kernel; the terminator is added after.
  mlir::gpu::GPUFuncOp createKernel(llvm::StringRef name,
                                    llvm::ArrayRef<mlir::BlockArgument> args,
                                    mlir::TypeRange results, int64_t blockSize,
                                    llvm::function_ref<void()> body,
                                    ExtraParams extra = {});
  /// The same for the whole source function (all arguments and results).
  mlir::gpu::GPUFuncOp createKernel(int64_t blockSize,
                                    llvm::function_ref<void()> body);

  const GpuCodegenOptions &options() const { return opts; }
  int64_t blockSize() const { return threads; }
  /// Static shared memory (bytes) of the last kernel created.
  int64_t sharedBytes();

  /// gpu.block_id x / gpu.thread_id x of the kernel being built.
  mlir::Value blockId() const { return blockIdValue; }
  mlir::Value threadId() const { return threadIdValue; }

  /// The extra parameters of the kernel being built: pointer `i` as a 1-D
  /// f32 memref, scalar `i` as an index.
  mlir::Value extraPointer(unsigned i) const { return extraPointers[i]; }
  mlir::Value extraScalar(unsigned i) const { return extraScalars[i]; }
  /// Key and value arrays of a KV-cache argument.
  std::pair<mlir::Value, mlir::Value> kvArrays(mlir::Value cache);

  /// Plans (row, chunk) blocks of up to options().maxThreads over `columns`
  /// read through `accesses`, by the row families' rule (gpuRowWidth,
  /// gpuRowBlock): for the GEMM pack kernel, which has no row schedule.
  ChunkPlan planChunks(int64_t columns, llvm::ArrayRef<RowAccess> accesses) const;
  /// Runs `body(row, col)` for this thread's vector of its (row, chunk)
  /// block, guarded when the blocks overhang the row.
  void forChunkColumn(const ChunkPlan &plan, int64_t columns,
                      llvm::function_ref<void(mlir::Value row, mlir::Value col)> body);

  /// A static f32 row in shared memory (a workgroup attribution).
  mlir::Value sharedRow(int64_t length);
  /// A static shared buffer of any shape and element type (16-byte aligned).
  mlir::Value sharedBuffer(llvm::ArrayRef<int64_t> shape, mlir::Type element);
  /// vector.load / vector.store on a shared row.
  mlir::Value loadShared(mlir::Value row, mlir::Value col, int64_t width);
  void storeShared(mlir::Value row, mlir::Value col, mlir::Value value);

  /// The thread-strided loop over the columns [0, length) in vectors of
  /// `width`: thread t owns columns t*width + k*blockSize*width. Every
  /// row-wise phase uses this same ownership, so a thread re-reads only
  /// what it wrote itself and phases need no barrier between them.
  void forThreadColumns(int64_t length, int64_t width,
                        llvm::function_ref<void(mlir::Value col)> body);
  mlir::Value forThreadColumns(int64_t length, int64_t width, mlir::Value init,
                               llvm::function_ref<mlir::Value(
                                   mlir::Value col, mlir::Value acc)> body);

  /// Sum of `value` over `lanes` consecutive lanes (a power of two <= 32):
  /// an xor butterfly of gpu.subgroup_reduce clusters of two lanes, offsets
  /// lanes / 2 down to 1; every lane gets the sum.
  mlir::Value laneSum(mlir::Value value, int64_t lanes);
  /// The value of lane (this lane xor `offset`) across the whole warp.
  mlir::Value shuffleXor(mlir::Value value, int64_t offset);
  /// Sum over the whole block: warp shuffles, then one f32 per warp in
  /// shared memory. Every thread gets the same total.
  mlir::Value blockSum(mlir::Value value);
  /// The same butterfly / block reductions with max or min (f32).
  mlir::Value laneMax(mlir::Value value, int64_t lanes);
  mlir::Value blockMin(mlir::Value value);

  // KernelTarget.
  void buildKernel(int64_t threads, llvm::function_ref<void(mlir::Value item)> body) override;
  mlir::Operation *symbolTable() const override { return gpuModule; }
  int64_t alignedWidth(int64_t width, const RowAccess &access) const override;
  mlir::Value dim(llvm::StringRef symbol) override;
  /// One aligned vector load; bf16 widened by a 16-bit shift.
  mlir::Value loadVectorF32(const RowAccess &access, mlir::Value flatIndex,
                            int64_t width) override;
  void store(const RowAccess &access, mlir::Value flatIndex, mlir::Value value) override;
  void forLanes(int64_t length, int64_t width,
                llvm::function_ref<void(mlir::Value col)> body) override {
    forThreadColumns(length, width, body);
  }
  mlir::Value forLanes(int64_t length, int64_t width, mlir::Value init,
                       llvm::function_ref<mlir::Value(mlir::Value, mlir::Value)> body) override {
    return forThreadColumns(length, width, init, body);
  }
  mlir::Value sumAcrossLanes(mlir::Value partial) override { return blockSum(partial); }
  mlir::Value minAcrossLanes(mlir::Value partial) override { return blockMin(partial); }
  mlir::ValueRange
  forLanesOf(mlir::Value length, mlir::ValueRange init,
             llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value, mlir::ValueRange)>
                 body) override {
    return forLoop(threadIdValue, length, threads, init, body);
  }
  codegen::ColumnPlan planColumns(int64_t columns) const override;
  codegen::ColumnPlan planLanes(int64_t columns) const override { return planColumns(columns); }
  void forColumns(const codegen::ColumnPlan &plan, int64_t columns, mlir::Value item,
                  llvm::function_ref<void(mlir::Value, mlir::Value)> body) override;
  mlir::Value scratchRow(int64_t length) override { return sharedRow(length); }
  mlir::Value loadScratch(mlir::Value row, mlir::Value col, int64_t width) override {
    return loadShared(row, col, width);
  }
  void storeScratch(mlir::Value row, mlir::Value col, mlir::Value value) override {
    storeShared(row, col, value);
  }
  void barrier() override;
  /// 1 / sqrt(x) with a correctly rounded sqrt (what math.rsqrt is on the
  /// CPU); math.sqrt would become an approximate libdevice call.
  mlir::Value rsqrt(mlir::Value x) override;

private:
  using Combine = llvm::function_ref<mlir::Value(mlir::Value, mlir::Value)>;
  mlir::Value laneReduce(mlir::Value value, int64_t lanes, mlir::gpu::AllReduceOperation kind);
  /// `kind` across a warp's lanes, `combine` (the same operation) across warps.
  mlir::Value blockReduce(mlir::Value value, mlir::gpu::AllReduceOperation kind,
                          Combine combine);

  mlir::gpu::GPUModuleOp gpuModule;
  mlir::RewriterBase &rewriter;
  GpuCodegenOptions opts;
  mlir::gpu::GPUFuncOp kernel;
  int64_t threads = 0;
  mlir::Value blockIdValue, threadIdValue;
  llvm::SmallVector<mlir::Value, 4> dimValues;
  llvm::SmallVector<mlir::Value, 2> extraPointers, extraScalars;
  mlir::Value reduceScratch;

  // --- deltashare: column blocks (KernelTarget::ColumnBlock) ---
public:
  /// A column's lanes are consecutive: an xor butterfly over them.
  mlir::Value sumColumnLanes(mlir::Value partial, int64_t lanes) override {
    return laneSum(partial, lanes);
  }
};

/// The GPU's own emitters (the families written once for every target are
/// Common/'s), each registered as its kind's pattern by its file's
/// populate*Patterns (KernelPatterns.h): each creates its gpu.func (named
/// like the source) and returns the launch geometry.
mlir::FailureOr<KernelGeometry> emitAttentionKernel(GpuKernelEmitter &emitter);
mlir::FailureOr<KernelGeometry> emitDeltaRuleKernel(GpuKernelEmitter &emitter);
mlir::FailureOr<KernelGeometry> emitRouterKernel(GpuKernelEmitter &emitter);
mlir::FailureOr<KernelGeometry> emitExpertsKernel(GpuKernelEmitter &emitter);

/// The sampler's `qk_argmax` (SamplerKernels.cpp): not outlined from the
/// program, it reads the step's output logits [rows, vocab] f32 and writes
/// one int32 token id per row (the lowest index of the row's largest non-NaN
/// logit, 0 for an all-NaN row). Grid [rowSymbol].
mlir::FailureOr<KernelGeometry> emitArgmaxKernel(mlir::gpu::GPUModuleOp gpuModule,
                                                 mlir::Location loc, int64_t vocab,
                                                 llvm::StringRef rowSymbol,
                                                 qkernel::ScheduleAttr schedule);

/// Candidates per row that the sampler's `qk_topk` writes (a power of two).
inline constexpr int64_t kTopCandidates = 256;

/// The sampler's `qk_topk` (SamplerKernels.cpp): reads the step's output
/// logits [rows, vocab] f32 and writes each row's kTopCandidates best
/// entries (logit descending, then id ascending; NaN excluded, -0 == +0) as
/// top_logits [rows, C] f32 and top_ids [rows, C] int32, padded with
/// (-inf, -1) when the row has fewer non-NaN logits. Grid [rowSymbol].
mlir::FailureOr<KernelGeometry> emitTopKKernel(mlir::gpu::GPUModuleOp gpuModule,
                                               mlir::Location loc, int64_t vocab,
                                               llvm::StringRef rowSymbol,
                                               qkernel::ScheduleAttr schedule);

/// The #qkernel.launch of `geometry`; reports through `emitError` and fails
/// when the attribute's verifier refuses it (too many threads, too much
/// shared memory, an inconsistent decode variant).
mlir::FailureOr<qkernel::LaunchAttr>
getLaunchAttr(mlir::MLIRContext *ctx, const KernelGeometry &geometry,
              llvm::function_ref<mlir::InFlightDiagnostic()> emitError);

/// Sets `launch`'s #qkernel.launch to that of `geometry`.
mlir::LogicalResult setLaunchGeometry(qkernel::LaunchOp launch, const KernelGeometry &geometry);

/// Adds the bodiless host-side declaration `@kernels::@name` that launches
/// keep naming once the code lives in `gpu.module @qwen_kernels` (or in a
/// library): a private func.func with the launch's tensor signature, tagged
/// `qkernel.kernel`, `qkernel.kind = #qkernel.kind<kind>` and `extra`, each tensor result
/// carrying its leading symbol as `qkernel.symbol`. It survives
/// gpu-module-to-binary, so launches verify at every stage.
mlir::func::FuncOp
declareKernel(mlir::OpBuilder &builder, mlir::Location loc, llvm::StringRef name,
              mlir::FunctionType type, qkernel::KernelKind kind,
              llvm::ArrayRef<mlir::NamedAttribute> extra,
              llvm::ArrayRef<std::string> resultSymbols);

} // namespace qwen::codegen::gpu

#endif // QWEN_PASSES_CODEGEN_GPU_GPUKERNELEMITTER_H
