//===- KernelEmitter.h - Shared CPU kernel emission helpers -----*- C++ -*-===//
//
// A kernel function produced by outlining (tensor arguments, qtf ops inside)
// is rewritten into the CPU kernel ABI of docs/ARTIFACT.md:
//   void NAME(void *const *args, const int64_t *dims, int64_t begin, int64_t end)
// KernelEmitter creates that function, turns each pointer slot into a flat
// memref (through codegen::KernelTarget, whose CPU implementation it is) and
// offers the CPU-only pieces: dot-product tiles, int32 stores, scratch.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_KERNELEMITTER_H
#define QWEN_PASSES_CODEGEN_CPU_KERNELEMITTER_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"
#include "qwen/Passes/Codegen/CPU/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/KernelTarget.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <functional>
#include <string>
#include <vector>

namespace qwen::codegen::cpu {

struct CpuCodegenOptions {
  /// The kernel's #qkernel.schedule (qwen-select-schedule).
  qkernel::ScheduleAttr schedule;
  /// f32 lanes per vector register (8 for AVX2, 16 for AVX-512): the
  /// schedule's; rows it does not divide take the schedule's row_widths.
  int64_t vectorWidth = 8;
};

using codegen::RowAccess;

/// The CPU implementation of the kernel target: one work item is one index
/// of the runtime's [begin, end) range, walked by one lane in vectors of
/// `vectorWidth` f32.
class KernelEmitter : public codegen::KernelTarget {
public:
  /// Every op the emitter builds goes through `rewriter` (its listener
  /// hears of it): the emitter runs inside a kernel pattern.
  KernelEmitter(mlir::ModuleOp kernels, mlir::func::FuncOp source,
                const CpuCodegenOptions &options, mlir::RewriterBase &rewriter);

  /// Creates the ABI function (named like `source`, which the caller erases
  /// afterwards) and binds every argument and result to a memref. The
  /// builder is left inside the work-item loop body; `item` is the index.
  /// With `range`, the function body is range(begin, end, itemLoop) instead
  /// of the work-item loop, which itemLoop() emits where `range` wants it
  /// (a kernel that blocks across the items of its range).
  using RangeBody = llvm::function_ref<void(mlir::Value begin, mlir::Value end,
                                            llvm::function_ref<void()> itemLoop)>;
  void createFunction(llvm::function_ref<void(mlir::Value item)> body,
                      RangeBody range = nullptr);

  const CpuCodegenOptions &options() const { return opts; }

  /// Key and value arrays of a KV-cache argument, typed for loads and stores.
  std::pair<RowAccess, RowAccess> kvArrays(mlir::Value cache) { return kvRows(cache); }

  void storeF32(const RowAccess &access, mlir::Value flatIndex, mlir::Value value);
  void storeVectorF32(const RowAccess &access, mlir::Value flatIndex,
                      mlir::Value value);
  /// Stores an index value as int32 (expert ids).
  void storeIndexAsI32(const RowAccess &access, mlir::Value flatIndex, mlir::Value value);

  /// A static-size scratch buffer of `type` allocated once at function entry.
  mlir::Value scratch(int64_t length, mlir::Type type);

  /// Register tile of dot products over `k` elements: for every x row start
  /// `xBases[i]` and weight row start `wBases[j]`, sum_k x[.. + k] * w[.. + k]
  /// with vector FMAs and a scalar tail. Returns the f32 sums row-major [i][j].
  llvm::SmallVector<mlir::Value> emitDotTile(const RowAccess &x,
                                             llvm::ArrayRef<mlir::Value> xBases,
                                             const RowAccess &w,
                                             llvm::ArrayRef<mlir::Value> wBases, int64_t k);

  // KernelTarget.
  void buildKernel(int64_t threads, llvm::function_ref<void(mlir::Value item)> body) override;
  mlir::Operation *symbolTable() const override { return kernels; }
  int64_t alignedWidth(int64_t width, const RowAccess &) const override { return width; }
  mlir::Value dim(llvm::StringRef symbol) override;
  /// Loads one element as f32 / `width` elements as vector<width x f32>.
  mlir::Value loadVectorF32(const RowAccess &access, mlir::Value flatIndex,
                            int64_t width) override;
  void store(const RowAccess &access, mlir::Value flatIndex, mlir::Value value) override;
  void forLanes(int64_t length, int64_t width,
                llvm::function_ref<void(mlir::Value col)> body) override;
  mlir::Value forLanes(int64_t length, int64_t width, mlir::Value init,
                       llvm::function_ref<mlir::Value(mlir::Value, mlir::Value)> body) override;
  mlir::Value sumAcrossLanes(mlir::Value partial) override { return partial; }
  mlir::Value minAcrossLanes(mlir::Value partial) override { return partial; }
  mlir::ValueRange
  forLanesOf(mlir::Value length, mlir::ValueRange init,
             llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value, mlir::ValueRange)>
                 body) override {
    return forLoop(index(0), length, 1, init, body);
  }
  codegen::ColumnPlan planColumns(int64_t columns) const override;
  codegen::ColumnPlan planLanes(int64_t columns) const override;
  void forColumns(const codegen::ColumnPlan &plan, int64_t columns, mlir::Value item,
                  llvm::function_ref<void(mlir::Value, mlir::Value)> body) override;
  /// A static-size f32 scratch row allocated once at function entry.
  mlir::Value scratchRow(int64_t length) override;
  mlir::Value loadScratch(mlir::Value row, mlir::Value col, int64_t width) override;
  void storeScratch(mlir::Value row, mlir::Value col, mlir::Value value) override;
  void barrier() override {}
  mlir::Value rsqrt(mlir::Value x) override;

private:
  mlir::ModuleOp kernels;
  mlir::RewriterBase &rewriter;
  CpuCodegenOptions opts;
  mlir::Value dimsMemref;

  // --- deltashare: column blocks (KernelTarget::ColumnBlock) ---
public:
  /// One lane owns every column block: nothing to sum.
  mlir::Value sumColumnLanes(mlir::Value partial, int64_t lanes) override {
    assert(lanes == 1 && "the CPU has one lane per column block");
    return partial;
  }
};

/// The CPU's own emitters (the families written once for every target are
/// Common/'s), each registered as its kind's pattern by its file's
/// populate*Patterns (KernelPatterns.h); each returns the grid (symbols and
/// integers).
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitMatmulKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitAttentionKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitRouterKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitExpertsKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitDeltaRuleKernel(KernelEmitter &emitter);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_KERNELEMITTER_H
