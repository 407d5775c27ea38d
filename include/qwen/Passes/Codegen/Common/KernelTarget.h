//===- KernelTarget.h - What kernel math asks of a target -------*- C++ -*-===//
//
// The small interface that row-wise kernel math is written against, once,
// for the CPU and the GPU (cf. Triton's TargetInfoBase). A kernel is a grid
// of work items; each item owns some rows and walks their columns in vectors
// of `width` lanes:
//
//                     CPU (KernelEmitter)          GPU (GpuKernelEmitter)
//   work item         one index of [begin, end)    one block
//   forLanes          scf.for over all vectors     thread-strided scf.for
//   sumAcrossLanes    nothing (one lane owner)     warp shuffles + shared
//    minAcrossLanes                                memory across warps
//   forLanesOf        scf.for over [0, n)          thread-strided scf.for
//   loadVectorF32     vector.load, bf16/f16 -> f32 aligned vector.load
//   store             f32 -> bf16/f16 (RNE)        the same, cvt.rn
//   scratchRow        stack buffer (alloca)        shared-memory row
//   barrier           nothing                      gpu.barrier
//   rsqrt             math.rsqrt                   1 / sqrt.rn
//
// What both targets share (argument binding, row addressing through views,
// index arithmetic, scalar loads, loops) is implemented here once. The row
// families (Norms.cpp, Rope.cpp, Elementwise.cpp, Embedding.cpp,
// KVWrite.cpp, Conv.cpp, declared in RowFamilies.h) use nothing else.
//
// Every target assigns the columns of a row to its lanes the same way in
// every phase (forLanes with one width), so a lane re-reads only what it
// wrote itself and phases need a barrier only where a lane reads another
// lane's columns (rope's pairs, a reduction's result).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_KERNELTARGET_H
#define QWEN_PASSES_CODEGEN_COMMON_KERNELTARGET_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <memory>
#include <string>

namespace qwen::codegen {

/// How a row-parallel kernel without reduction splits `columns`: work items
/// of (row, chunk), each chunk `threads` lanes of one `width` vector (the
/// CPU: one chunk, one lane walking the row).
struct ColumnPlan {
  int64_t width = 1;
  int64_t threads = 1;
  int64_t chunks = 1;
};

/// A block of the value columns of an f32 matrix S [rows][columns] (the
/// delta rule's state) that one lane owns for a phase:
///   CPU  `width` columns from `column`, one vector of a loop over the row's
///        vectors, every row of it in memory;
///   GPU  one column, its rows part, part + split, ... in the lane's
///        registers (or, a state too large for them, every row in memory).
/// A row of the block is a vector<width x f32> (width 1: an f32 scalar).
struct ColumnBlock {
  mlir::Value column;
  int64_t width = 1;
  int64_t rows = 0;
  /// Consecutive lanes sharing the columns; lane `part` holds rows part,
  /// part + split, ... (split 1: every row).
  int64_t split = 1;
  mlir::Value part;
  /// This lane's rows in registers (rows / split of them); empty: in memory,
  /// row r at `base` + r * `stride` of `memory` (`base` includes `column`).
  llvm::SmallVector<mlir::Value> registers;
  RowAccess memory;
  mlir::Value base;
  int64_t stride = 0;
};

/// A row indexed like S's rows (a normalized k or q, a row of a chunk tile):
/// entry r at `base` + r of the f32 buffer `row` (base null: 0).
struct RowOperand {
  mlir::Value row;
  mlir::Value base;
};

class KernelTarget {
public:
  virtual ~KernelTarget();

  mlir::ImplicitLocOpBuilder &builder() { return *b; }
  mlir::func::FuncOp source() const { return sourceFunc; }
  /// The kernel's #qkernel.schedule (qwen-select-schedule).
  qkernel::ScheduleAttr schedule() const { return sched; }
  /// f32 per vector of a row of `length` columns, as the schedule records it
  /// (`widthFor`); a length it has no width for is a compiler bug.
  int64_t rowWidth(int64_t length) const;
  /// Lanes of one work item: the schedule's threads (the CPU: 0, one lane).
  int64_t itemThreads() const { return sched.getThreads(); }
  /// The symbol of the leading dimension of a source value ("T", "R", ...).
  std::string leadingSymbol(mlir::Value value);
  /// Grid factors [symbol, n], n left out when 1.
  llvm::SmallVector<mlir::Attribute> gridOf(llvm::StringRef symbol, int64_t n) const;

  //===--------------------------------------------------------------------===//
  // Target primitives
  //===--------------------------------------------------------------------===//

  /// Creates the kernel of the whole source function (every argument and
  /// result bound to a memref); `body(item)` runs once per work item with
  /// `threads` lanes (ignored by the CPU).
  virtual void buildKernel(int64_t threads,
                           llvm::function_ref<void(mlir::Value item)> body) = 0;
  /// The op holding the kernel's constant tables (RoPE frequencies).
  virtual mlir::Operation *symbolTable() const = 0;
  /// The widest piece <= `width` (a power of two) in which `access` can be
  /// read at a multiple of `width` and stay aligned on this target (the CPU:
  /// `width`). A legality bound, not a schedule choice: a view at an odd
  /// offset loads a row's vectors in narrower pieces.
  virtual int64_t alignedWidth(int64_t width, const RowAccess &access) const = 0;

  /// The value of step symbol `symbol` ("T", "B", "P", "R") as an index.
  virtual mlir::Value dim(llvm::StringRef symbol) = 0;

  /// Loads `width` elements as vector<width x f32> (bf16 / f16 widened; a
  /// width of 1 is a scalar load broadcast).
  virtual mlir::Value loadVectorF32(const RowAccess &access, mlir::Value flatIndex,
                                    int64_t width) = 0;
  /// Stores f32 data (scalar or vector), rounding to the slot's dtype.
  virtual void store(const RowAccess &access, mlir::Value flatIndex, mlir::Value value) = 0;

  /// This lane's columns of [0, length) in vectors of `width`.
  virtual void forLanes(int64_t length, int64_t width,
                        llvm::function_ref<void(mlir::Value col)> body) = 0;
  /// The same with one f32 / vector accumulator carried across this lane's
  /// columns; returns this lane's partial.
  virtual mlir::Value forLanes(int64_t length, int64_t width, mlir::Value init,
                               llvm::function_ref<mlir::Value(mlir::Value col,
                                                              mlir::Value acc)> body) = 0;
  /// The sum over the work item's lanes of each lane's f32 `partial`; every
  /// lane gets the same total.
  virtual mlir::Value sumAcrossLanes(mlir::Value partial) = 0;
  /// The minimum over the work item's lanes of each lane's f32 `partial`;
  /// every lane gets it.
  virtual mlir::Value minAcrossLanes(mlir::Value partial) = 0;
  /// This lane's share of the indices [0, length) of a dynamic length, one
  /// at a time in increasing order (the CPU: all of them; the GPU: thread t
  /// owns t, t + threads, ...), carrying `init`; returns this lane's values.
  virtual mlir::ValueRange
  forLanesOf(mlir::Value length, mlir::ValueRange init,
             llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value, mlir::ValueRange)>
                 body) = 0;

  /// (row, chunk) work items over `columns`, in the schedule's width and
  /// threads (the CPU: one item walks the row).
  virtual ColumnPlan planColumns(int64_t columns) const = 0;
  /// Spreads `columns` over every lane of the grid, one vector of the
  /// schedule's width each (the CPU: an item per vector; the GPU: blocks of
  /// the schedule's threads).
  virtual ColumnPlan planLanes(int64_t columns) const = 0;
  /// Runs `body(row, col)` for every vector of columns work item `item` owns
  /// (row = item / chunks), guarded where the chunks overhang the row.
  virtual void forColumns(const ColumnPlan &plan, int64_t columns, mlir::Value item,
                          llvm::function_ref<void(mlir::Value row, mlir::Value col)> body) = 0;

  /// A static f32 row private to the work item.
  virtual mlir::Value scratchRow(int64_t length) = 0;
  virtual mlir::Value loadScratch(mlir::Value row, mlir::Value col, int64_t width) = 0;
  virtual void storeScratch(mlir::Value row, mlir::Value col, mlir::Value value) = 0;
  /// Makes every lane's scratch writes visible to the work item's lanes.
  virtual void barrier() = 0;
  /// 1 / sqrt(x), correctly rounded sqrt on both targets.
  virtual mlir::Value rsqrt(mlir::Value x) = 0;
  /// The sum of `partial` over `lanes` consecutive lanes sharing a column
  /// block (every one of them gets it; the CPU: lanes is 1, nothing).
  virtual mlir::Value sumColumnLanes(mlir::Value partial, int64_t lanes) = 0;

  //===--------------------------------------------------------------------===//
  // Column blocks (ColumnBlock), shared
  //===--------------------------------------------------------------------===//

  /// The scalar `x` at every column of `block` (width 1: x).
  mlir::Value splatColumns(const ColumnBlock &block, mlir::Value x);
  /// x * y + z on f32 scalars or vectors.
  mlir::Value fma(mlir::Value x, mlir::Value y, mlir::Value z);
  /// The block's columns of the row at `rowBase` of `access`.
  mlir::Value loadColumns(const ColumnBlock &block, const RowAccess &access, mlir::Value rowBase);
  void storeColumns(const ColumnBlock &block, const RowAccess &access, mlir::Value rowBase,
                    mlir::Value value);
  /// Key row of this lane's `r`-th register of `block`.
  mlir::Value blockRow(const ColumnBlock &block, int64_t r);
  /// Walks this lane's rows of `block` in increasing order carrying `init`:
  /// `body(S[row], c, acc)` gets entry `row` of each of `operands` (loaded
  /// before S's row, at the block's width) in c. Returns the carried values.
  using RowBody = llvm::function_ref<llvm::SmallVector<mlir::Value>(
      mlir::Value s, llvm::ArrayRef<mlir::Value> c, mlir::ValueRange acc)>;
  llvm::SmallVector<mlir::Value> readRows(ColumnBlock &block, llvm::ArrayRef<RowOperand> operands,
                                          mlir::ValueRange init, RowBody body);
  /// The same walk replacing each row by `update(S[row], c)` (kept in the
  /// block's registers or stored to memory), then carrying
  /// `accumulate(new row, c, acc)`.
  llvm::SmallVector<mlir::Value>
  updateRows(ColumnBlock &block, llvm::ArrayRef<RowOperand> operands, mlir::ValueRange init,
             llvm::function_ref<mlir::Value(mlir::Value s, llvm::ArrayRef<mlir::Value> c)> update,
             RowBody accumulate);
  /// sumColumnLanes over the block's split lanes.
  mlir::Value sumColumn(const ColumnBlock &block, mlir::Value partial) {
    return block.split > 1 ? sumColumnLanes(partial, block.split) : partial;
  }

  //===--------------------------------------------------------------------===//
  // Shared helpers
  //===--------------------------------------------------------------------===//

  /// Resolves a value of the source function through views.
  RowAccess access(mlir::Value value);
  /// The same row geometry without memref, usable before a kernel exists.
  static RowAccess viewGeometry(mlir::Value value);
  /// Memref of result `index` of the source function (empty for a cache or
  /// state result, which has no slot).
  RowAccess result(unsigned index) { return resultAccess[index]; }
  /// Key and value arrays of a KV-cache argument.
  std::pair<RowAccess, RowAccess> kvRows(mlir::Value cache);
  /// Conv-window and recurrent arrays of a linear-attention state argument:
  /// [slot][layer][conv_window][conv_channels] in the state's element type
  /// and [slot][layer][heads][key_dim][value_dim] in f32.
  std::pair<RowAccess, RowAccess> stateArrays(mlir::Value state);
  /// Flat offset of kv head 0 at `position` of the sequence whose block-table
  /// row starts at `tableRow`, in layer `layer` of a cache laid out
  /// [page][layer][slot][kv_head][head_dim] (ARTIFACT.md).
  mlir::Value kvOffset(qtf::KVCacheType cache, int64_t layer, const RowAccess &blockTable,
                       mlir::Value tableRow, mlir::Value position);

  // Constants and arithmetic shorthands.
  mlir::Value index(int64_t value);
  mlir::Value f32(float value);
  mlir::Value i32(int32_t value);
  mlir::Value addIndex(mlir::Value a, mlir::Value b);
  mlir::Value mulIndex(mlir::Value a, int64_t b);
  mlir::Value mulIndex(mlir::Value a, mlir::Value b);
  mlir::Value divIndex(mlir::Value a, int64_t b);
  mlir::Value remIndex(mlir::Value a, int64_t b);
  /// Flat index of (row, unit, col) of `access`.
  mlir::Value address(const RowAccess &access, mlir::Value row, mlir::Value unit,
                      mlir::Value col);
  /// x / (1 + exp(-x)) on an f32 scalar or vector.
  mlir::Value silu(mlir::Value x);

  /// Loads one element as f32.
  mlir::Value loadF32(const RowAccess &access, mlir::Value flatIndex);
  /// Loads an int32 element (positions, ids, page tables) as an index.
  mlir::Value loadIndex(const RowAccess &access, mlir::Value flatIndex);

  /// scf.for from lb to ub (index values) with `step`.
  void forLoop(mlir::Value lb, mlir::Value ub, int64_t step,
               llvm::function_ref<void(mlir::Value)> body);
  /// scf.for with f32/vector loop-carried values.
  mlir::ValueRange forLoop(mlir::Value lb, mlir::Value ub, int64_t step,
                           mlir::ValueRange init,
                           llvm::function_ref<llvm::SmallVector<mlir::Value>(
                               mlir::Value, mlir::ValueRange)> body);
  /// scf.if without else; the builder is inside `then` during `body`.
  void ifThen(mlir::Value condition, llvm::function_ref<void()> body);

  /// Fills the scratch row `row` with unit `unit` of row `token` of `value`,
  /// computing the rms_norm / rope / gather_rows chain that produces it
  /// (Norms.cpp). Ends with a barrier: the row is complete for every lane.
  void emitRowChain(mlir::Value value, mlir::Value token, mlir::Value unit,
                    mlir::Value row);

protected:
  KernelTarget(mlir::func::FuncOp source, qkernel::ScheduleAttr schedule)
      : sourceFunc(source), sched(schedule) {}

  /// Starts building at `block` (the kernel's entry) with no bindings.
  void beginKernel(mlir::Block *block);
  /// Binds every argument in `args` and every tensor result type in
  /// `results` to a memref over the pointer `nextPointer` yields, in ABI slot
  /// order (a KV cache or a linear state takes two slots; a cache or state
  /// result none).
  void bindSlots(llvm::ArrayRef<mlir::BlockArgument> args, mlir::TypeRange results,
                 llvm::function_ref<mlir::Value()> nextPointer);
  mlir::Value memrefFromPointer(mlir::Value pointer, mlir::Type elementType);

  mlir::func::FuncOp sourceFunc;
  qkernel::ScheduleAttr sched;
  std::unique_ptr<mlir::ImplicitLocOpBuilder> b;
  mlir::Block *entryBlock = nullptr;
  llvm::DenseMap<mlir::Value, RowAccess> argAccess;
  llvm::DenseMap<mlir::Value, std::pair<mlir::Value, mlir::Value>> kvAccess;
  llvm::DenseMap<mlir::Value, std::pair<mlir::Value, mlir::Value>> stateAccess;
  llvm::SmallVector<RowAccess> resultAccess;
};

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_KERNELTARGET_H
