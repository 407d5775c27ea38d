//===- KernelEmitter.h - Shared CPU kernel emission helpers -----*- C++ -*-===//
//
// A kernel function produced by outlining (tensor arguments, qtf ops inside)
// is rewritten into the CPU kernel ABI of docs/ARTIFACT.md:
//   void NAME(void *const *args, const int64_t *dims, int64_t begin, int64_t end)
// KernelEmitter creates that function, turns each pointer slot into a flat
// memref, resolves view ops (split / reshape) into row addressing, and offers
// typed scalar and vector loads that widen bf16 / f16 weights to f32.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_KERNELEMITTER_H
#define QWEN_PASSES_CODEGEN_CPU_KERNELEMITTER_H

#include "dialects/QKernel/IR/QKernel.h"
#include "dialects/QTF/IR/QTF.h"
#include "passes/Codegen/Common/KernelABI.h"

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
  /// f32 lanes per vector (8 for AVX2, 16 for AVX-512): the schedule's.
  int64_t vectorWidth = 8;
};

using codegen::RowAccess;

class KernelEmitter {
public:
  KernelEmitter(mlir::ModuleOp kernels, mlir::func::FuncOp source,
                const CpuCodegenOptions &options);

  /// Creates the ABI function (named like `source`, which the caller erases
  /// afterwards) and binds every argument and result to a memref. The
  /// builder is left inside the work-item loop body; `item` is the index.
  void createFunction(llvm::function_ref<void(mlir::Value item)> body);

  mlir::ImplicitLocOpBuilder &builder() { return *b; }
  const CpuCodegenOptions &options() const { return opts; }
  mlir::func::FuncOp source() const { return sourceFunc; }

  /// The value of step symbol `symbol` ("T", "B", "P", "R") as an index.
  mlir::Value dim(llvm::StringRef symbol);
  /// Resolves a value of the source function through views.
  RowAccess access(mlir::Value value);
  /// Memref of the result slot `index` of the source function.
  RowAccess result(unsigned index);
  /// Key and value arrays of a KV-cache argument, typed for loads and stores.
  std::pair<RowAccess, RowAccess> kvArrays(mlir::Value cache);
  /// Conv-window and recurrent arrays of a linear-attention state argument:
  /// [slot][layer][conv_window][channels] and [slot][layer][heads][key_dim][value_dim].
  std::pair<RowAccess, RowAccess> stateArrays(mlir::Value state);
  /// Flat offset of kv head 0 at `position` of the sequence whose block-table
  /// row starts at `tableRow`, in layer `layer` of a cache laid out
  /// [page][layer][slot][kv_head][head_dim] (ARTIFACT.md).
  mlir::Value kvOffset(qtf::KVCacheType cache, int64_t layer, const RowAccess &blockTable,
                       mlir::Value tableRow, mlir::Value position);

  // Constants and arithmetic shorthands.
  mlir::Value index(int64_t value);
  mlir::Value f32(float value);
  mlir::Value addIndex(mlir::Value a, mlir::Value b);
  mlir::Value mulIndex(mlir::Value a, int64_t b);
  mlir::Value mulIndex(mlir::Value a, mlir::Value b);

  /// Loads one element as f32 / `width` elements as vector<width x f32>.
  mlir::Value loadF32(const RowAccess &access, mlir::Value flatIndex);
  mlir::Value loadVectorF32(const RowAccess &access, mlir::Value flatIndex,
                            int64_t width);
  /// Loads an int32 element (positions, ids, page tables) as an index.
  mlir::Value loadIndex(const RowAccess &access, mlir::Value flatIndex);
  void storeF32(const RowAccess &access, mlir::Value flatIndex, mlir::Value value);
  void storeVectorF32(const RowAccess &access, mlir::Value flatIndex,
                      mlir::Value value);
  /// Flat index of (row, unit, col) of `access`.
  mlir::Value address(const RowAccess &access, mlir::Value row, mlir::Value unit,
                      mlir::Value col);

  /// Stores an index value as int32 (expert ids).
  void storeIndexAsI32(const RowAccess &access, mlir::Value flatIndex, mlir::Value value);

  /// A static-size f32 scratch row allocated once at function entry.
  mlir::Value scratchRow(int64_t length);
  /// A static-size scratch buffer of `type` allocated once at function entry.
  mlir::Value scratch(int64_t length, mlir::Type type);

  /// Register tile of dot products over `k` elements: for every x row start
  /// `xBases[i]` and weight row start `wBases[j]`, sum_k x[.. + k] * w[.. + k]
  /// with vector FMAs and a scalar tail. Returns the f32 sums row-major [i][j].
  llvm::SmallVector<mlir::Value> emitDotTile(const RowAccess &x,
                                             llvm::ArrayRef<mlir::Value> xBases,
                                             const RowAccess &w,
                                             llvm::ArrayRef<mlir::Value> wBases, int64_t k);
  /// Largest vector width <= options().vectorWidth that divides `length`.
  int64_t vectorWidthFor(int64_t length) const;

  /// scf.for from lb to ub (index values) with `step`.
  void forLoop(mlir::Value lb, mlir::Value ub, int64_t step,
               llvm::function_ref<void(mlir::Value)> body);
  /// scf.for with f32/vector loop-carried values.
  mlir::ValueRange forLoop(mlir::Value lb, mlir::Value ub, int64_t step,
                           mlir::ValueRange init,
                           llvm::function_ref<llvm::SmallVector<mlir::Value>(
                               mlir::Value, mlir::ValueRange)> body);

  /// Fills `row` (a scratch row of the value's unit width) with unit `unit`
  /// of row `token` of `value`, computing the rms_norm / rope chain that
  /// produces it inside the kernel.
  void emitRowChain(mlir::Value value, mlir::Value token, mlir::Value unit,
                    mlir::Value row);
  /// The symbol of the leading dimension of a source value ("T", "R", ...).
  std::string leadingSymbol(mlir::Value value);

private:
  void applyRmsNorm(qtf::RmsNormOp norm, mlir::Value row, int64_t length);
  void applyRope(qtf::RopeOp rope, mlir::Value token, mlir::Value row);
  mlir::Value memrefFromPointer(mlir::Value pointer, mlir::Type elementType);

  mlir::ModuleOp kernels;
  mlir::func::FuncOp sourceFunc;
  CpuCodegenOptions opts;
  std::unique_ptr<mlir::ImplicitLocOpBuilder> b;
  mlir::Block *entryBlock = nullptr;
  mlir::Value dimsMemref;
  llvm::DenseMap<mlir::Value, RowAccess> argAccess;
  llvm::DenseMap<mlir::Value, std::pair<mlir::Value, mlir::Value>> kvAccess;
  llvm::DenseMap<mlir::Value, std::pair<mlir::Value, mlir::Value>> stateAccess;
  llvm::SmallVector<RowAccess> resultAccess;
};

/// Per-family emitters; each returns the grid (symbols and integers).
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitMatmulKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitAttentionKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitRowsKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitKVWriteKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitEmbeddingKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitElementwiseKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitRouterKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitExpertsKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitConvKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitDeltaRuleKernel(KernelEmitter &emitter);
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
emitGatedNormKernel(KernelEmitter &emitter);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_KERNELEMITTER_H
