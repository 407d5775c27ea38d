//===- CpuSchedules.cpp - Schedules of the CPU kernels --------------------===//
//
// Every CPU kernel vectorizes with the register width (`vector_width`).
// A matmul work item owns `grain` = 8 output columns (weight rows), so
// decode streams each weight row exactly once and threads never share an
// output; register tiles of 4 tokens x 2 weight rows reuse each loaded
// weight vector 4 times. A lone token (decode) takes 1 x 1 tiles: a work item
// then reads its weight rows front to back as one sequential stream, which
// the hardware prefetchers follow. Interleaving 4 rows (4 streams 2 KiB apart
// for hidden 1024) streamed ~1.7x fewer bytes per second on Zen 4, although
// it has 4 independent FMA chains to the single row's one (docs/PERFORMANCE.md).
// A batched decode step of up to 4 tokens over short weight rows takes
// 4 x 1 tiles for the same reason (decode_tile = [4, 1]; decodeTokenTile).
// Every (token, weight row) pair keeps one accumulator walked in k order in
// every tile shape, so a token's results do not depend on its tile.
// The experts kernel gathers 4 slots per block; a prefill of at least
// kPrefillTokens tokens gathers groups of up to 64 slots per expert and walks
// the expert's weights in L2-sized panels (selectExpertsSchedule).
//
// A prefill of at least kPrefillTokens tokens takes the cache-blocked path
// (passes/Codegen/CPU/BlockedMatmul.cpp): a thread's weight rows in panels
// of at most kPanelBytes of weights (a quarter of a Zen 4 core's 1 MiB L2,
// leaving room for the activation rows streaming through it), walked in
// register tiles of 4 tokens x 4 weight rows with AVX-512's 32 registers
// (16 accumulators + 8 operands), 4 x 2 with AVX2's 16. bf16 weights dotted
// by 16-lane vdpbf16ps take the packed layout instead: 6 tokens x 64 weight
// rows (24 accumulators of 16 rows, 4 packed weight vectors, broadcasts),
// panels of whole 64-row tiles (test/Schedule/matmul-prefill-packed.mlir).
//
// Rows a register width does not divide take the largest power of two that
// does (`row_widths`); the delta rule runs in chunks of one token.
//
// The dot kind of matmul and experts tiles comes from the target's features:
// bf16 weights on an AVX512-BF16 target dot in bf16 (vdpbf16ps) instead of
// widening the weights. By default (auto) the f32 activations are rounded to
// bf16 at the decoder's GEMMs, as llama.cpp and HF's bf16 run do, while the
// lm_head and the router's matmul keep f32 FMAs; explicit choices: off (f32
// FMAs), split (one-token tiles as bf16 hi + lo) or round (every GEMM).
// Block-wise FP8 weights always take f32 FMAs: the bytes are widened and
// scaled in registers to exactly HF's f32 dequantization, which bf16 would
// round (an e4m3 value fits bf16, its product with the scale does not).
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Schedule/Schedules.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "qwen/Dialect/QTF/IR/QTF.h"

#include <algorithm>

using namespace mlir;
using namespace qwen;
using namespace qwen::qkernel;
using qwen::schedule::CpuScheduleOptions;
using Bf16Activations = CpuScheduleOptions::Bf16Activations;

static constexpr int64_t kMatmulRowsPerItem = 8;
static constexpr int64_t kMatmulTokenTile = 4;
static constexpr int64_t kMatmulWeightTile = 2;
static constexpr int64_t kMatmulDecodeWeightTile = 1;
static constexpr int64_t kShortWeightRowBytes = 2048;
static constexpr int64_t kExpertsSlotBlock = 4;
static constexpr int64_t kPrefillTokens = 16;
static constexpr int64_t kPanelBytes = 256 * 1024;
static constexpr int64_t kMaxPanelRows = 256;
/// A prefill group of an expert's slots: its bf16 input rows in at most a
/// quarter of L2, at most kMaxExpertsGroup slots (the group's rows are
/// stack scratch).
static constexpr int64_t kExpertsGroupBytes = 256 * 1024;
static constexpr int64_t kMaxExpertsGroup = 64;
static constexpr int64_t kPackedTokenTile = 6;
static constexpr int64_t kPackedWeightRows = 64;
static constexpr int64_t kMaxPackedPanelBytes = 512 * 1024;
/// Tokens per chunk of the chunked delta rule. One: every token takes the
/// recurrent step, so the state and output after a token depend on the tokens
/// before it alone, not on how they were cut into steps. That makes a prefix
/// cache hit, a prompt split across steps and a decode step bit-identical to
/// one prefill (docs/DESIGN.md, "Prefix caching"). On the CPU it costs no
/// prefill speed: a chunk of 64 (HF, FLA) does more arithmetic per token
/// (3 dk dv + 64 (dk + dv) FMAs against 3 dk dv), and the 64 KiB state of a
/// head stays in L2 either way.
static constexpr int64_t kDeltaRuleChunk = 1;

namespace {
/// One dot product of a kernel's register tiles: sum_k x[k] * w[k].
struct DotOperands {
  Type x, w;
  int64_t k;
};

/// The dot kinds of the multi-token and the one-token tiles.
struct DotKinds {
  DotKind tile = DotKind::Fma, decode = DotKind::Fma;
};
} // namespace

static bool hasFeature(const CpuScheduleOptions &options, StringRef feature) {
  return llvm::is_contained(options.cpuFeatures, feature);
}

/// f32 lanes of the accumulators of an AVX512-BF16 dot over `k` elements
/// (each step consumes twice as many bf16 elements), or 0 when none fits.
/// The codegen takes the widest of these that the vector width and `k`
/// allow (DotProduct.cpp), which is this one whenever this is not 0.
static int64_t bf16DotLanes(const CpuScheduleOptions &options, int64_t k) {
  if (!hasFeature(options, "avx512bf16") || !hasFeature(options, "avx512f"))
    return 0;
  // 512-bit vdpbf16ps needs avx512f only; the 256 / 128-bit forms need avx512vl.
  for (int64_t lanes : {16, 8, 4}) {
    if (lanes > options.vectorWidth || k % (2 * lanes) != 0)
      continue;
    if (lanes < 16 && !hasFeature(options, "avx512vl"))
      continue;
    return lanes;
  }
  return 0;
}

/// The dot kind of a register tile of `tokens` activation rows over `dot`,
/// `mode` being the kernel's own (Auto resolved).
static DotKind selectDotKind(const CpuScheduleOptions &options, Bf16Activations mode,
                             const DotOperands &dot, int64_t tokens) {
  if (mode == Bf16Activations::Off || isa<Float8E4M3FNType>(dot.w))
    return DotKind::Fma; // block-wise FP8: widened and scaled in registers
  if (!dot.w.isBF16() || !(dot.x.isF32() || dot.x.isBF16()) || bf16DotLanes(options, dot.k) == 0)
    return DotKind::Fma;
  // bf16 activations are exact in either kind; the split costs a second dot.
  if (dot.x.isBF16() || mode == Bf16Activations::Round)
    return DotKind::Avx512Bf16Round;
  // Split: two dots per 32 products, as many instructions as f32 FMAs, so it
  // wins only where it saves the weight widening without adding much: a
  // one-token (decode) tile splits one activation vector per weight row.
  // A 4-token tile would split 4 vectors for 2 weight rows, costing more than
  // the widening it saves (prefill measured 1.8x slower), so it keeps FMAs.
  return tokens == 1 ? DotKind::Avx512Bf16Split : DotKind::Fma;
}

/// The dot kinds of every tile of `kernel` (matmul: its linear; experts: the
/// gate / up and the down products). A kernel whose products would choose
/// differently keeps f32 FMAs for all: the schedule has one kind per tile.
static DotKinds selectDotKinds(func::FuncOp kernel, const CpuScheduleOptions &options) {
  SmallVector<DotOperands> dots;
  kernel.walk([&](qtf::LinearOp linear) {
    RankedTensorType w = linear.getWeight().getType();
    dots.push_back({linear.getInput().getType().getElementType(), w.getElementType(),
                    w.getDimSize(1)});
  });
  kernel.walk([&](qtf::MoeExpertFfnOp ffn) {
    auto input = ffn.getInput().getType();
    Type f32 = Float32Type::get(kernel.getContext());
    dots.push_back({input.getElementType(), ffn.getGateUp().getType().getElementType(),
                    input.getDimSize(1)});
    // The down product reads the f32 SwiGLU rows.
    dots.push_back({f32, ffn.getDown().getType().getElementType(),
                    static_cast<int64_t>(ffn.getIntermediateSize())});
  });
  // Auto: round everywhere but in the kernels that decide logits or routing.
  Bf16Activations mode = options.bf16Activations;
  if (mode == Bf16Activations::Auto)
    mode = options.f32Kernels.count(kernel.getSymName().str()) ? Bf16Activations::Off
                                                               : Bf16Activations::Round;
  auto agreed = [&](int64_t tokens) {
    if (dots.empty())
      return DotKind::Fma;
    DotKind kind = selectDotKind(options, mode, dots.front(), tokens);
    for (const DotOperands &dot : dots)
      if (selectDotKind(options, mode, dot, tokens) != kind)
        return DotKind::Fma;
    return kind;
  };
  return {agreed(kMatmulTokenTile), agreed(1)};
}

/// Tokens of the matmul tiles of a batched decode step (decode_tile[0]):
/// steps of at most kMatmulTokenTile tokens over short weight rows (at most
/// kShortWeightRowBytes) take kMatmulTokenTile x 1 tiles, one weight stream
/// as for a lone token, where the kMatmulWeightTile rows of `tile` would be
/// streams 2 KiB apart (measured 1.3x slower for 4 tokens over rows of
/// 1024 bf16); longer rows keep `tile` (1).
static int64_t decodeTokenTile(func::FuncOp kernel) {
  int64_t longest = 0;
  kernel.walk([&](qtf::LinearOp linear) {
    RankedTensorType w = linear.getWeight().getType();
    longest = std::max(longest,
                       w.getDimSize(1) * int64_t(w.getElementTypeBitWidth()) / 8);
  });
  return longest > 0 && longest <= kShortWeightRowBytes ? kMatmulTokenTile : 1;
}

/// The lengths of the rows `kernel` walks in vectors: the reduction length of
/// its dot tiles (matmul, experts), its head / state rows (attention, delta
/// rule) or its row (the row families).
static FailureOr<SmallVector<int64_t>> rowLengths(func::FuncOp kernel, KernelKind kind) {
  SmallVector<int64_t> lengths;
  switch (kind) {
  case KernelKind::Matmul:
    kernel.walk([&](qtf::LinearOp linear) {
      const int64_t k = linear.getWeight().getType().getDimSize(1);
      lengths.push_back(k);
      // Block-wise FP8: the tiles walk whole column blocks, then the ragged rest.
      if (std::optional<ArrayRef<int64_t>> block = linear.getWeightBlock()) {
        lengths.push_back((*block)[1]);
        if (k % (*block)[1])
          lengths.push_back(k % (*block)[1]);
      }
    });
    break;
  case KernelKind::Experts:
    kernel.walk([&](qtf::MoeExpertFfnOp ffn) {
      const int64_t hidden = ffn.getInput().getType().getDimSize(1);
      const int64_t inter = ffn.getIntermediateSize();
      lengths.push_back(hidden);
      lengths.push_back(inter);
      // Block-wise FP8: as the matmul, whole column blocks then the rests.
      if (std::optional<ArrayRef<int64_t>> block = ffn.getWeightBlock()) {
        lengths.push_back((*block)[1]);
        for (int64_t k : {hidden, inter})
          if (k % (*block)[1])
            lengths.push_back(k % (*block)[1]);
      }
    });
    break;
  case KernelKind::Attention:
    kernel.walk([&](qtf::PagedAttentionOp attention) {
      lengths.push_back(attention.getQuery().getType().getDimSize(2));
    });
    break;
  case KernelKind::DeltaRule:
    kernel.walk([&](qtf::GatedDeltaRuleOp rule) {
      codegen::DeltaRuleSizes sizes = codegen::getDeltaRuleSizes(rule);
      lengths.append({sizes.keyDim, sizes.valueDim});
    });
    break;
  default:
    if (!codegen::isRowFamily(kind))
      break;
    FailureOr<codegen::RowShape> shape = codegen::getRowShape(kernel, kind);
    if (failed(shape))
      return failure();
    lengths.push_back(shape->length);
    break;
  }
  return lengths;
}

/// [length, width] pairs for the rows the register width does not divide:
/// the largest power of two that does.
static DenseI64ArrayAttr rowWidthsFor(MLIRContext *ctx, ArrayRef<int64_t> lengths,
                                      int64_t vectorWidth) {
  SmallVector<int64_t> pairs;
  for (int64_t length : lengths) {
    if (length % vectorWidth == 0 || llvm::is_contained(pairs, length))
      continue;
    int64_t width = vectorWidth;
    while (width > 1 && length % width)
      width /= 2;
    pairs.append({length, width});
  }
  return pairs.empty() ? DenseI64ArrayAttr() : DenseI64ArrayAttr::get(ctx, pairs);
}

namespace {
/// The blocked-prefill fields of a matmul schedule (all 0: per-item only).
struct PrefillBlocking {
  int64_t panel = 0;
  SmallVector<int64_t> tile;
  int64_t tokens = 0;
};
} // namespace

/// Panels of weight rows whose bytes fit kPanelBytes (whole register tiles,
/// at least one), for the kernel's (single) linear.
static PrefillBlocking selectPrefillBlocking(func::FuncOp kernel,
                                             const CpuScheduleOptions &options, DotKinds dot) {
  SmallVector<qtf::LinearOp> linears;
  kernel.walk([&](qtf::LinearOp linear) { linears.push_back(linear); });
  if (linears.size() != 1)
    return {};
  RankedTensorType w = linears.front().getWeight().getType();
  const int64_t n = w.getDimSize(0), k = w.getDimSize(1);
  const int64_t bytes = std::max<int64_t>(1, w.getElementTypeBitWidth() / 8);
  // vdpbf16ps over 16 lanes takes the packed layout: 6 tokens x 64 weight
  // rows (4 registers of 16 rows per token, 24 accumulators + 4 weight
  // vectors + broadcasts in AVX-512's 32 registers).
  // The packed panel is a stack scratch block of the kernel: rows of k > 4096
  // (512 KiB for one tile's 64 rows) keep the unpacked tiles.
  const bool packed = dot.tile == DotKind::Avx512Bf16Round && w.getElementType().isBF16() &&
                      bf16DotLanes(options, k) == 16 &&
                      kPackedWeightRows * k * 2 <= kMaxPackedPanelBytes;
  const int64_t mr = packed ? kPackedTokenTile : kMatmulTokenTile;
  const int64_t nr = packed ? kPackedWeightRows : options.vectorWidth >= 16 ? 4 : 2;
  int64_t rows = kPanelBytes / (k * bytes);
  rows = std::clamp<int64_t>(rows - rows % nr, nr, kMaxPanelRows);
  // A panel as large as the matrix is the matrix.
  rows = std::min<int64_t>(rows, llvm::alignTo(n, nr));
  return {rows, {mr, nr}, kPrefillTokens};
}

/// The experts schedule `base` (decode: blocks of kExpertsSlotBlock slots)
/// with its grouped prefill path (GroupedExperts.cpp): `tile` = [slots of a
/// decode block, slots of a prefill group, down rows of a panel], `panel` =
/// gate / up row pairs of a panel, both panels of at most kPanelBytes of
/// weights; a group's rounded input rows take at most kExpertsGroupBytes.
/// Register tiles of 4 slots x 4 weight rows (2 gate / up pairs) with
/// AVX-512's 32 registers, 4 x 2 with AVX2's 16, as the blocked matmul.
static ScheduleAttr selectExpertsSchedule(func::FuncOp kernel, const CpuScheduleOptions &options,
                                          ScheduleAttr base) {
  qtf::MoeExpertFfnOp ffn;
  kernel.walk([&](qtf::MoeExpertFfnOp op) { ffn = op; });
  if (!ffn)
    return base;
  MLIRContext *ctx = kernel.getContext();
  const int64_t hidden = ffn.getInput().getType().getDimSize(1);
  const int64_t inter = ffn.getIntermediateSize();
  const int64_t bytes =
      std::max<int64_t>(1, ffn.getGateUp().getType().getElementTypeBitWidth() / 8);
  const int64_t nr = options.vectorWidth >= 16 ? 4 : 2;
  auto panelRows = [&](int64_t rowBytes, int64_t rows) {
    int64_t fit = kPanelBytes / rowBytes;
    fit = std::clamp<int64_t>(fit - fit % nr, nr, kMaxPanelRows);
    return std::min<int64_t>(fit, llvm::alignTo(rows, nr));
  };
  const int64_t pairs = panelRows(2 * hidden * bytes, inter);
  const int64_t downRows = panelRows(inter * bytes, hidden);
  const int64_t group = std::clamp<int64_t>(kExpertsGroupBytes / (2 * hidden),
                                            kMatmulTokenTile, kMaxExpertsGroup);
  auto array = [&](ArrayRef<int64_t> values) { return DenseI64ArrayAttr::get(ctx, values); };
  return ScheduleAttr::get(
      ctx, base.getTarget(), base.getThreads(), base.getGrain(), base.getVectorWidth(),
      base.getLanes(), array({kExpertsSlotBlock, group, downRows}), base.getTileLanes(),
      base.getStages(), base.getTensorCores(), base.getDot(), base.getDecodeThreads(),
      base.getDecodeLanes(), base.getDecodeTile(), base.getDecodeDot(), base.getSplits(),
      base.getCombineThreads(), base.getRowWidths(), base.getSplitKeys(), pairs,
      array({kMatmulTokenTile, nr}), kPrefillTokens);
}

/// Attention `tile` = [query heads per work item, keys per block, value
/// vectors per pass]: a whole GQA group per item (every K / V row it loads
/// serves the group's heads); as many keys as the head row's vectors have
/// lanes (their partial dots sum into one vector of scores: one vector exp
/// per head and block); and the most vectors of the head row (dividing it)
/// whose accumulators for every head fit kAttentionAccumulators registers.
static SmallVector<int64_t> selectAttentionTile(func::FuncOp kernel,
                                                const CpuScheduleOptions &options) {
  constexpr int64_t kAttentionAccumulators = 16;
  int64_t group = 1, keys = options.vectorWidth, vectors = 1;
  kernel.walk([&](qtf::PagedAttentionOp attention) {
    RankedTensorType query = attention.getQuery().getType();
    group = query.getDimSize(1) / attention.getCache().getType().getKvHeads();
    while (keys > 1 && query.getDimSize(2) % keys)
      keys /= 2;
    const int64_t rowVectors = query.getDimSize(2) / keys;
    for (int64_t v = 1; v <= rowVectors && v * group <= kAttentionAccumulators; ++v)
      if (rowVectors % v == 0)
        vectors = v;
  });
  return {group, keys, vectors};
}

FailureOr<ScheduleAttr> qwen::schedule::selectCpuSchedule(func::FuncOp kernel,
                                                          const CpuScheduleOptions &options) {
  MLIRContext *ctx = kernel.getContext();
  std::optional<KernelKind> kind = getKernelKind(kernel);
  if (!kind)
    return kernel.emitOpError("has no qkernel.kind to schedule"), failure();
  auto array = [&](ArrayRef<int64_t> values) { return DenseI64ArrayAttr::get(ctx, values); };
  FailureOr<SmallVector<int64_t>> lengths = rowLengths(kernel, *kind);
  if (failed(lengths))
    return failure();
  DenseI64ArrayAttr rowWidths = rowWidthsFor(ctx, *lengths, options.vectorWidth);
  auto schedule = [&](int64_t grain, DenseI64ArrayAttr tile, DotKinds dot,
                      DenseI64ArrayAttr decodeTile) {
    // decode_dot is printed only where it differs from dot.
    DotKind decodeDot = dot.decode == dot.tile ? DotKind::None : dot.decode;
    return ScheduleAttr::get(ctx, ScheduleTarget::Cpu, /*threads=*/0, grain,
                             options.vectorWidth, /*lanes=*/0, tile, /*tile_lanes=*/0,
                             /*stages=*/1, /*tensor_cores=*/false, dot.tile, /*decode_threads=*/0,
                             /*decode_lanes=*/0, decodeTile, decodeDot, /*splits=*/0,
                             /*combine_threads=*/0, rowWidths, /*split_keys=*/0);
  };
  if (*kind == KernelKind::Matmul) {
    DotKinds dot = selectDotKinds(kernel, options);
    ScheduleAttr base =
        schedule(kMatmulRowsPerItem, array({kMatmulTokenTile, kMatmulWeightTile}), dot,
                 array({decodeTokenTile(kernel), kMatmulDecodeWeightTile}));
    PrefillBlocking blocking = selectPrefillBlocking(kernel, options, dot);
    if (!blocking.panel)
      return base;
    return ScheduleAttr::get(
        ctx, base.getTarget(), base.getThreads(), base.getGrain(), base.getVectorWidth(),
        base.getLanes(), base.getTile(), base.getTileLanes(), base.getStages(),
        base.getTensorCores(), base.getDot(), base.getDecodeThreads(), base.getDecodeLanes(),
        base.getDecodeTile(), base.getDecodeDot(), base.getSplits(), base.getCombineThreads(),
        base.getRowWidths(), base.getSplitKeys(), blocking.panel, array(blocking.tile),
        blocking.tokens);
  }
  if (*kind == KernelKind::Experts)
    return selectExpertsSchedule(kernel, options,
                                 schedule(1, array({kExpertsSlotBlock}),
                                          selectDotKinds(kernel, options), {}));
  if (*kind == KernelKind::DeltaRule)
    return schedule(1, array({kDeltaRuleChunk}), {DotKind::None, DotKind::None}, {});
  if (*kind == KernelKind::Attention)
    return schedule(1, array(selectAttentionTile(kernel, options)), {DotKind::None, DotKind::None},
                    {});
  return schedule(1, {}, {DotKind::None, DotKind::None}, {});
}

std::set<std::string> qwen::schedule::selectF32ActivationKernels(ModuleOp top) {
  std::set<std::string> names;
  ModuleOp kernels = getKernelModule(top);
  auto step = top.lookupSymbol<func::FuncOp>("step");
  if (!kernels || !step)
    return names;
  auto kindOf = [&](LaunchOp launch) -> std::optional<KernelKind> {
    auto kernel = kernels.lookupSymbol<func::FuncOp>(launch.getKernel().getLeafReference());
    return kernel ? getKernelKind(kernel) : std::nullopt;
  };
  auto keepMatmul = [&](Value value) {
    auto launch = value.getDefiningOp<LaunchOp>();
    if (launch && kindOf(launch) == KernelKind::Matmul)
      names.insert(launch.getKernel().getLeafReference().str());
  };
  step.walk([&](func::ReturnOp ret) {
    for (Value result : ret.getOperands())
      keepMatmul(result);
  });
  step.walk([&](LaunchOp launch) {
    if (kindOf(launch) == KernelKind::Router)
      for (Value arg : launch.getArgs())
        keepMatmul(arg);
  });
  return names;
}

bool qwen::schedule::roundsF32Activations(func::FuncOp kernel, ScheduleAttr schedule) {
  if (schedule.getDot() != DotKind::Avx512Bf16Round &&
      schedule.getDecodeDot() != DotKind::Avx512Bf16Round)
    return false;
  bool f32Input = false;
  kernel.walk([&](qtf::LinearOp linear) {
    f32Input |= linear.getInput().getType().getElementType().isF32();
  });
  // The experts' down product always reads the f32 SwiGLU rows.
  kernel.walk([&](qtf::MoeExpertFfnOp) { f32Input = true; });
  return f32Input;
}
