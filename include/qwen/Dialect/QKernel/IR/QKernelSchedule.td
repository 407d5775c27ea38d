//===- QKernelSchedule.td - kernel schedules ----------------*- tablegen -*-===//
//
// `#qkernel.schedule` is the schedule of one outlined kernel: how many
// threads or work items, how wide its vectors, how it tiles. It is chosen
// once by qwen-select-schedule (passes/Schedule) and read by the target
// codegen, which never re-derives it (IREE's lowering_config idea).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_DIALECT_QKERNEL_SCHEDULE_TD
#define QWEN_DIALECT_QKERNEL_SCHEDULE_TD

include "qwen/Dialect/QKernel/IR/QKernelDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def QKernel_ScheduleTarget : I32EnumAttr<"ScheduleTarget",
    "the codegen target a schedule is for", [
      I32EnumAttrCase<"Cpu", 0, "cpu">,
      I32EnumAttrCase<"Cuda", 1, "cuda">]> {
  let cppNamespace = "::qwen::qkernel";
  let genSpecializedAttr = 0;
}

// The inner product of a CPU matmul register tile:
// - `fma`: weights widened to f32 in registers, f32 vector FMAs (any AVX2 CPU).
// - `avx512_bf16_split`: AVX512-BF16 `vdpbf16ps` on bf16 weights and the f32
//   activations split into two bf16 parts, x = hi + lo (16 of f32's 24
//   significand bits, a relative error <= 2^-17 per element): f32-level
//   results without widening the weights, at two dots per 32 products.
// - `avx512_bf16_round`: `vdpbf16ps` on activations rounded to bf16 (as HF's
//   bf16 run and llama.cpp's bf16 GEMMs do): one dot per 32 products.
// The activation treatment is part of the kind, not a separate parameter,
// because it changes the instruction sequence (and the numerics) of the tile.
// bf16 activations are exact in bf16, so for them both bf16 kinds are the same
// single dot. Tile units (amx) are the room left for more.
def QKernel_DotKind : I32EnumAttr<"DotKind",
    "the instruction a CPU matmul register tile accumulates with", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Fma", 1, "fma">,
      I32EnumAttrCase<"Avx512Bf16Split", 2, "avx512_bf16_split">,
      I32EnumAttrCase<"Avx512Bf16Round", 3, "avx512_bf16_round">]> {
  let cppNamespace = "::qwen::qkernel";
  let genSpecializedAttr = 0;
}

class QKernel_I64Parameter<string desc, string default = "0">
    : DefaultValuedParameter<"int64_t", default, desc>;

class QKernel_BoolParameter<string desc>
    : AttrOrTypeParameter<"bool", desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<bool> {
      if (::mlir::succeeded($_parser.parseOptionalKeyword("true")))
        return true;
      if (::mlir::failed($_parser.parseKeyword("false")))
        return ::mlir::failure();
      return false;
    }() }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
  let defaultValue = "false";
}

/// An optional i64 array, written `[4, 2]`.
class QKernel_I64ArrayParameter<string desc>
    : OptionalParameter<"::mlir::DenseI64ArrayAttr", desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::mlir::DenseI64ArrayAttr> {
      auto array = ::llvm::dyn_cast_or_null<::mlir::DenseI64ArrayAttr>(
          ::mlir::DenseI64ArrayAttr::parse($_parser, ::mlir::Type()));
      if (!array)
        return ::mlir::failure();
      return array;
    }() }];
  let printer = [{ $_self.print($_printer) }];
}

def QKernel_DotKindParameter : EnumParameter<QKernel_DotKind> {
  let defaultValue = "::qwen::qkernel::DotKind::None";
}

def QKernel_ScheduleAttr : AttrDef<QKernel_Dialect, "Schedule"> {
  let mnemonic = "schedule";
  let summary = "How one kernel is scheduled on its target";
  let description = [{
    Attached as `qkernel.schedule` to every kernel function of
    `module @kernels` by qwen-select-schedule; the codegen of `target`
    reads it and fails on a kernel without one. Parameters a kernel family
    does not use keep their defaults (and are not printed).

    - `threads` (cuda): threads per block. For the row families (rows,
      kv_write, embedding, elementwise, conv, gated_norm) it is the block
      the kernel runs: the smallest power of two (>= 32, <= max-threads)
      that covers a row's vectors. For the router and the pack kernel
      before a cuBLASLt GEMM it is the largest block.
    - `grain` (cpu): output rows of one work item (matmul: weight rows).
    - `vector_width`: f32 per vector. On the CPU the register width; on
      the GPU the width of the kernel's main loads (row families: of its
      row, the widest <= 4 that divides it and keeps every access aligned).
    - `row_widths` (`[length, width, ...]` pairs): rows of `length`
      columns that the kernel walks `width` f32 at a time where that is not
      `vector_width` (the CPU: lengths the register width does not divide
      take the largest power of two that does; the GPU experts: the
      intermediate rows). Codegen reads every width through `widthFor`.
    - `lanes` (cuda): threads that share one row: attention, lanes per key
      of the per-token path; delta_rule, threads per value column.
    - `tile`: matmul (cpu) `[tokens, weight rows]` of a register tile;
      FP8 matmul (cuda, the generated kernel over e4m3 weights)
      `[activation rows per pass]` over a warp's weight row (each pass
      reads the row again, from L1 after the first);
      attention (cuda) `[queries, keys]` of a prefill tile; attention
      (cpu) `[query heads per work item, keys per block, value vectors per
      pass]` (a GQA group's heads share each K / V row; a block's scores
      are one vector; V accumulates that many head-row vectors of every
      head in registers); experts
      `[slots]` gathered per block; delta_rule (cuda) `[tokens]` of a
      chunked-prefill chunk (absent: the state stays in global memory).
    - `tile_lanes` (cuda attention): lanes per query of a prefill tile.
    - `stages`: software pipeline depth (1: none).
    - `tensor_cores`: whether the kernel's products run on tensor cores
      (today only the cuBLASLt GEMMs).
    - `dot` (cpu matmul, experts): the register tile's inner product
      (DotKind above), chosen from the target's cpu features and the
      operand types; bf16 kinds only on bf16 weights.
    - `decode_dot` (cpu matmul, experts): the inner product of the
      one-token tiles (decode, a prefill's leftover tokens, an expert's lone
      slot) where it differs from `dot` (none: as `dot`). Splitting f32
      activations pays off only there: a one-token tile splits one
      activation vector per weight row, a 4 x 2 tile would split 4 for 2.
    - `decode_threads`, `decode_lanes`, `decode_tile`: the decode-only
      variant (attention: one block per (token, kv head), `decode_tile` =
      `[query heads per pass over the keys]`; cpu matmul: `[tokens, weight
      rows]`: a lone token's tile has the weight rows, and with tokens > 1
      steps of at most that many tokens (batched decode) take tokens x
      weight rows tiles instead of `tile`; cuda FP8 matmul on cuBLASLt: the generated FP8
      kernel its decode steps run, `decode_tile` as `tile` above).
    - `splits`: the most blocks that split one item (attention decode:
      flash-decoding split-K over the context; experts: blocks per expert).
    - `combine_threads`: the block merging the attention decode splits.
    - `split_keys` (attention decode): the fewest context positions worth
      a split of their own; the runtime takes the split count from it, the
      step's context and the device's multiprocessors (up to `splits`).
    - The sampler kernels (cuda `qk_argmax`, `qk_topk`) are not kernels
      of @kernels: their schedules sit on @step as `qkernel.sampler_schedule
      = {argmax = #qkernel.schedule<...>, topk = #qkernel.schedule<...>}`.
    - delta_rule (cpu): `tile = [tokens]` of a chunk (1: the recurrent form).
    - `panel`, `prefill_tile`, `prefill_tokens` (cpu matmul): the
      cache-blocked prefill path, taken by a step of at least
      `prefill_tokens` tokens (0: never). A thread's contiguous range of
      weight rows is cut into panels of `panel` rows (sized so a bf16 panel
      stays in L2 while every token block reads it); each panel is walked
      token block by token block in register tiles of `prefill_tile` =
      `[tokens, weight rows]`, so an activation block is read once per panel
      instead of once per `grain` rows. Every (token, weight row) dot keeps
      the order of the other tiles (same lanes over k, same reduction), so a
      token's outputs do not depend on the path or tile it falls in.
      cpu experts: a step of at least `prefill_tokens` tokens gathers an
      expert's slots in groups of `tile[1]` and walks its weights in panels
      of `panel` gate / up row pairs and `tile[2]` down rows, each applied
      to the whole group in `prefill_tile` = [slots, weight rows] tiles
      (`tile[0]`: the slots of a decode block).

    ```mlir
    #qkernel.schedule<target = cpu, grain = 8, vector_width = 16,
                      tile = [4, 2], decode_tile = [4, 1], dot = fma>
    #qkernel.schedule<target = cpu, grain = 8, vector_width = 16,
                      tile = [4, 2], dot = fma, decode_tile = [1, 1],
                      decode_dot = avx512_bf16_split>
    #qkernel.schedule<target = cuda, threads = 256, vector_width = 4,
                      lanes = 8, tile = [32, 32], tile_lanes = 8,
                      decode_threads = 128, decode_lanes = 8,
                      decode_tile = [2], splits = 32, combine_threads = 128>
    ```
  }];
  let parameters = (ins
    EnumParameter<QKernel_ScheduleTarget>:$target,
    QKernel_I64Parameter<"cuda: threads per block">:$threads,
    QKernel_I64Parameter<"cpu: output rows per work item">:$grain,
    QKernel_I64Parameter<"f32 per vector", "1">:$vector_width,
    QKernel_I64Parameter<"cuda: threads sharing one row">:$lanes,
    QKernel_I64ArrayParameter<"tile sizes">:$tile,
    QKernel_I64Parameter<"cuda attention: lanes per query of a tile">:$tile_lanes,
    QKernel_I64Parameter<"software pipeline stages", "1">:$stages,
    QKernel_BoolParameter<"products on tensor cores">:$tensor_cores,
    QKernel_DotKindParameter:$dot,
    QKernel_I64Parameter<"decode variant: threads per block">:$decode_threads,
    QKernel_I64Parameter<"decode variant: threads sharing one row">:$decode_lanes,
    QKernel_I64ArrayParameter<"decode variant: tile sizes">:$decode_tile,
    QKernel_DotKindParameter:$decode_dot,
    QKernel_I64Parameter<"most blocks splitting one item">:$splits,
    QKernel_I64Parameter<"threads of the split-combining block">:$combine_threads,
    QKernel_I64ArrayParameter<"[length, width] pairs of rows not at vector_width">:$row_widths,
    QKernel_I64Parameter<"attention decode: fewest context positions per split">:$split_keys,
    QKernel_I64Parameter<"cpu matmul: weight rows of a blocked-prefill cache panel">:$panel,
    QKernel_I64ArrayParameter<"cpu matmul: blocked-prefill register tile">:$prefill_tile,
    QKernel_I64Parameter<"cpu matmul: fewest tokens of the blocked prefill">:$prefill_tokens);
  // The schedule without the blocked-prefill fields (every kernel but the CPU
  // matmul's).
  let builders = [
    AttrBuilder<(ins "ScheduleTarget":$target, "int64_t":$threads, "int64_t":$grain,
                     "int64_t":$vector_width, "int64_t":$lanes,
                     "::mlir::DenseI64ArrayAttr":$tile, "int64_t":$tile_lanes,
                     "int64_t":$stages, "bool":$tensor_cores, "DotKind":$dot,
                     "int64_t":$decode_threads, "int64_t":$decode_lanes,
                     "::mlir::DenseI64ArrayAttr":$decode_tile, "DotKind":$decode_dot,
                     "int64_t":$splits, "int64_t":$combine_threads,
                     "::mlir::DenseI64ArrayAttr":$row_widths, "int64_t":$split_keys), [{
      return $_get($_ctxt, target, threads, grain, vector_width, lanes, tile, tile_lanes,
                   stages, tensor_cores, dot, decode_threads, decode_lanes, decode_tile,
                   decode_dot, splits, combine_threads, row_widths, split_keys,
                   /*panel=*/0, ::mlir::DenseI64ArrayAttr(), /*prefill_tokens=*/0);
    }]>];
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isCpu() const { return getTarget() == ScheduleTarget::Cpu; }
    /// Tile size `i`, or `fallback` when the tile has fewer entries.
    int64_t tileSize(unsigned i, int64_t fallback = 0) const {
      auto tile = getTile();
      return tile && i < tile.size() ? tile[i] : fallback;
    }
    /// The dot kind of a register tile of `tokens` activation rows.
    DotKind dotFor(int64_t tokens) const {
      return tokens == 1 && getDecodeDot() != DotKind::None ? getDecodeDot() : getDot();
    }
    /// f32 per vector of a row of `length` columns: its `row_widths` entry,
    /// else `vector_width`; 0 when neither divides `length` (the schedule
    /// was not made for that row).
    int64_t widthFor(int64_t length) const {
      if (auto widths = getRowWidths())
        for (int64_t i = 0; i + 1 < widths.size(); i += 2)
          if (widths[i] == length)
            return widths[i + 1];
      return length % getVectorWidth() == 0 ? getVectorWidth() : 0;
    }
    /// Blocked-prefill register tile size `i` (0 when there is none).
    int64_t prefillTileSize(unsigned i) const {
      auto tile = getPrefillTile();
      return tile && i < tile.size() ? tile[i] : 0;
    }
    int64_t decodeTileSize(unsigned i, int64_t fallback = 0) const {
      auto tile = getDecodeTile();
      return tile && i < tile.size() ? tile[i] : fallback;
    }
  }];
}

#endif // QWEN_DIALECT_QKERNEL_SCHEDULE_TD
