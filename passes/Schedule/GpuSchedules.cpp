//===- GpuSchedules.cpp - Schedules of the CUDA kernels -------------------===//
//
// The row families take the smallest block (up to max-threads) that covers
// their row; GEMMs are cuBLASLt calls on tensor cores (their pack kernel is
// a row kernel of up to max-threads), block-wise FP8 ones too where cuBLASLt's
// block-scaled FP8 GEMM applies, else a generated kernel (scheduleFp8Matmul).
// Attention, the delta rule and the experts pick
// their block shapes from the head and state sizes, as documented at each.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Schedule/Schedules.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "qwen/Dialect/QTF/IR/QTF.h"

#include <algorithm>

using namespace mlir;
using namespace qwen;
using namespace qwen::qkernel;

namespace {
/// A CUDA schedule under construction (defaults: a plain block).
struct GpuSchedule {
  int64_t threads = 0, vectorWidth = 1, lanes = 0, tileLanes = 0, stages = 1;
  SmallVector<int64_t> tile, decodeTile;
  bool tensorCores = false;
  int64_t decodeThreads = 0, decodeLanes = 0, splits = 0, combineThreads = 0, splitKeys = 0;
  SmallVector<int64_t> rowWidths;

  ScheduleAttr get(MLIRContext *ctx) const {
    auto array = [&](ArrayRef<int64_t> values) {
      return values.empty() ? DenseI64ArrayAttr() : DenseI64ArrayAttr::get(ctx, values);
    };
    return ScheduleAttr::get(ctx, ScheduleTarget::Cuda, threads, /*grain=*/0, vectorWidth, lanes,
                             array(tile), tileLanes, stages, tensorCores, DotKind::None,
                             decodeThreads, decodeLanes, array(decodeTile), DotKind::None, splits,
                             combineThreads, array(rowWidths), splitKeys);
  }
};
} // namespace

/// The row families: one block per (row, chunk) or (token, unit), each
/// thread one vector of the row's width (conv: one channel) per pass; the
/// smallest block of whole warps, up to max-threads, that covers the row.
static LogicalResult scheduleRows(func::FuncOp kernel, KernelKind kind,
                                  const schedule::GpuScheduleOptions &options, GpuSchedule &s) {
  FailureOr<codegen::RowShape> shape = codegen::getRowShape(kernel, kind);
  if (failed(shape))
    return failure();
  s.vectorWidth = shape->lanePerColumn ? 1 : codegen::gpuRowWidth(shape->length, shape->accesses);
  s.threads = codegen::gpuRowBlock((shape->length + s.vectorWidth - 1) / s.vectorWidth,
                                   options.maxThreads);
  return success();
}

/// Paged attention, one block per (token, query head) with L lanes per key
/// (the most, up to a warp, that divide the head's vectors). Prefill tiles:
/// L' lanes per query, each with at most 4 vectors (16 f32 of q and of the
/// accumulator) when the head allows, widened until the block has at most 32
/// groups; one query per group. K keys (and values) of f32 staged per step:
/// at most 64, at most 32 KiB for both, and the whole kernel under 48 KiB
/// of static shared memory next to the per-token path's rows (query, G
/// maxima / sums / partial rows) and the row chain's reduction scratch.
///
/// Decode (T == B): one block per (token, kv head), L_d lanes per key with at
/// most 4 vectors each, at most 128 threads, query heads of the kv head
/// taken so that each lane holds at most 64 accumulator floats; split-K over
/// the context in up to 32 blocks of at least 64 positions (the runtime picks
/// the count from the context and the multiprocessors), merged by a
/// combine block of one thread per output column (32 to 128).
static LogicalResult scheduleAttention(func::FuncOp kernel, const schedule::GpuScheduleOptions &options,
                                       GpuSchedule &s) {
  qtf::PagedAttentionOp attention;
  kernel.walk([&](qtf::PagedAttentionOp op) { attention = op; });
  if (!attention)
    return kernel.emitOpError("attention kernel without a paged_attention to schedule");
  RankedTensorType queryType = attention.getQuery().getType();
  const int64_t heads = queryType.getDimSize(1), headDim = queryType.getDimSize(2);
  const int64_t group = heads / attention.getCache().getType().getKvHeads();

  // Tensor-core tiles (AttentionMma.cpp): 4 warps of 16 query rows, K keys
  // staged as the cache dtype with the values (rows padded by 8 elements)
  // in at most 36 KiB; the staging buffer also takes the Q = 64 query rows.
  constexpr int64_t kMmaThreads = 128, kMmaQueries = 64;
  Type element = attention.getCache().getType().getElementType();
  int64_t mmaKeys = 64;
  while (mmaKeys > 16 && 2 * mmaKeys * (headDim + 8) * 2 > 36 * 1024)
    mmaKeys /= 2;
  const bool mma = options.mmaAttention && (element.isBF16() || element.isF16()) &&
                   headDim % 32 == 0 && 2 * mmaKeys >= kMmaQueries;
  const int64_t threads = mma ? kMmaThreads : options.attentionThreads;
  const int64_t width = codegen::gpuRowWidth(headDim);
  const int64_t vectors = headDim / width;
  int64_t lanes = 1;
  while (lanes < 32 && vectors % (lanes * 2) == 0)
    lanes *= 2;
  const int64_t groups = threads / lanes;

  constexpr int64_t kMaxTileQueries = 32;
  int64_t tileLanes = 1;
  while (tileLanes < 32 && vectors % (tileLanes * 2) == 0 &&
         (vectors / tileLanes > 4 || threads / tileLanes > kMaxTileQueries))
    tileLanes *= 2;
  const int64_t tileQueries = std::min(threads / tileLanes, kMaxTileQueries);
  const int64_t perTokenBytes = 4 * (headDim + 2 * groups + groups * headDim + threads / 32);
  int64_t tileKeys = 64;
  while (tileKeys > 1 && (2 * tileKeys * headDim * 4 > 32 * 1024 ||
                          perTokenBytes + 2 * tileKeys * headDim * 4 >= 48 * 1024))
    tileKeys /= 2;

  constexpr int64_t kDecodeThreads = 128;
  constexpr int64_t kDecodeAccFloats = 64;
  constexpr int64_t kMaxDecodeSplits = 32;
  // The runtime splits a decode so that the grid has about two blocks per
  // multiprocessor, but never into splits shorter than this many positions.
  constexpr int64_t kMinKeysPerSplit = 64;
  int64_t decodeLanes = 1;
  while (decodeLanes < 32 && vectors % (decodeLanes * 2) == 0 && vectors / decodeLanes > 4)
    decodeLanes *= 2;
  const int64_t decodePerLane = vectors / decodeLanes;
  const int64_t chunkHeads =
      std::max<int64_t>(1, std::min(group, kDecodeAccFloats / (decodePerLane * width)));

  s.threads = threads;
  s.vectorWidth = width;
  s.lanes = lanes;
  s.tile = {tileQueries, tileKeys};
  s.tileLanes = tileLanes;
  if (mma) {
    s.tensorCores = true;
    s.tile = {kMmaQueries, mmaKeys};
  }
  s.decodeThreads = std::max<int64_t>(std::min(threads, kDecodeThreads), decodeLanes);
  s.decodeLanes = decodeLanes;
  s.decodeTile = {chunkHeads};
  s.splits = kMaxDecodeSplits;
  s.combineThreads = std::clamp<int64_t>(headDim, 32, kDecodeThreads);
  s.splitKeys = kMinKeysPerSplit;
  return success();
}

/// Gated delta rule: `lanes` consecutive threads per value column, each
/// holding key rows p, p + lanes, ... of the state in registers (at most 32
/// rows a thread, at most 512 threads a block, so each thread has the
/// registers); `lanes` = 0 when the state does not fit and stays in global
/// memory (one thread per column). Prefill runs in chunks of `tile[0]`
/// tokens: the largest of 64, 32, 16, 8 whose shared chunk buffer fits next
/// to the recurrent path's q / k rows and the reduction scratch (16 for
/// key_dim = value_dim = 128: 35 KiB); no tile when none does.
static LogicalResult scheduleDeltaRule(func::FuncOp kernel, GpuSchedule &s) {
  constexpr int64_t kMaxRegisterRows = 32, kMaxRegisterThreads = 512;
  qtf::GatedDeltaRuleOp rule;
  kernel.walk([&](qtf::GatedDeltaRuleOp op) { rule = op; });
  if (!rule)
    return kernel.emitOpError("delta_rule kernel without a gated_delta_rule to schedule");
  const codegen::DeltaRuleSizes sizes = codegen::getDeltaRuleSizes(rule);
  const int64_t dk = sizes.keyDim, dv = sizes.valueDim;
  auto wholeWarps = [](int64_t n) { return std::max<int64_t>(32, (n + 31) / 32 * 32); };
  int64_t split = 1;
  while (dk > split * kMaxRegisterRows && split < 32)
    split *= 2;
  int64_t threads = wholeWarps(dv * split);
  bool inRegisters = dk % split == 0 && dk <= split * kMaxRegisterRows &&
                     threads <= kMaxRegisterThreads;
  if (!inRegisters) {
    split = 0;
    threads = wholeWarps(dv);
  }
  if (threads > 1024)
    return kernel.emitOpError("delta_rule needs value_dim <= 1024 (one thread per column)");
  s.threads = threads;
  s.lanes = split;
  if (!inRegisters)
    return success();
  const int64_t other = 2 * dk + threads / 32;
  for (int64_t chunk : {64, 32, 16, 8})
    if ((other + schedule::deltarule::chunkBufferFloats(chunk, dk, dv, threads)) * 4 <=
        schedule::kGpuSharedLimitBytes) {
      s.tile = {chunk};
      break;
    }
  return success();
}

/// MoE experts: blocks of max-threads; up to 8 gathered slots per block
/// (fewer when their x and h rows, the slot queue and one count per warp
/// would not fit the static shared memory) and enough blocks per expert
/// (`splits`, at most 8) that the grid has about 512 blocks.
static LogicalResult scheduleExperts(func::FuncOp kernel, const schedule::GpuScheduleOptions &options,
                                     GpuSchedule &s) {
  constexpr int64_t kMaxSlotBlock = 8, kTargetBlocks = 512, kMaxParts = 8;
  qtf::MoeExpertFfnOp ffn;
  kernel.walk([&](qtf::MoeExpertFfnOp op) { ffn = op; });
  if (!ffn)
    return kernel.emitOpError("experts kernel without a moe_expert_ffn to schedule");
  const int64_t experts = ffn.getNumExperts();
  const int64_t inter = ffn.getIntermediateSize();
  const int64_t hidden = ffn.getInput().getType().getDimSize(1);
  const int64_t threads = options.maxThreads, warps = threads / 32;
  auto sharedFloats = [&](int64_t slots) {
    return slots * (hidden + inter) + slots + threads + warps;
  };
  int64_t slotBlock = kMaxSlotBlock;
  while (slotBlock > 1 && sharedFloats(slotBlock) * 4 >= schedule::kGpuSharedLimitBytes)
    slotBlock /= 2;
  // Vector widths of the two reductions (over hidden, then over inter).
  const int64_t hiddenWidth = codegen::gpuRowWidth(
      hidden, {codegen::KernelTarget::viewGeometry(ffn.getInput()),
               codegen::KernelTarget::viewGeometry(ffn.getGateUp())});
  const int64_t interWidth =
      codegen::gpuRowWidth(inter, {codegen::KernelTarget::viewGeometry(ffn.getDown())});
  // vector_width is the hidden rows' (codegen reads it as such), row_widths
  // the intermediate rows' where it differs.
  s.vectorWidth = hiddenWidth;
  if (interWidth != hiddenWidth)
    s.rowWidths = {inter, interWidth};
  s.threads = threads;
  s.tile = {slotBlock};
  s.splits = std::clamp<int64_t>((kTargetBlocks + experts - 1) / experts, 1, kMaxParts);
  return success();
}

/// A matmul over block-wise FP8 weights (qtf.linear with a weight scale).
/// cuBLASLt's block-scaled FP8 GEMM (sm_90) where it applies: 128 x 128
/// blocks, K a multiple of 512 (whole 128-wide K blocks, the weight's scale
/// rows of K / 128 floats 16-byte aligned), f32 activations read directly
/// (the pack quantizes them), no bias epilogue. Otherwise the generated
/// kernel of passes/Codegen/GPU/Fp8Matmul.cpp: 4 warps, a warp per output
/// column with 32 lanes across K, 4 activation rows per pass over the
/// weight row (tile = [4]). The cuBLASLt form's decode steps take that same
/// kernel (decode_threads, decode_lanes, decode_tile): it reads the fp8
/// weights directly, with no pack launch.
static void scheduleFp8Matmul(func::FuncOp kernel, GpuSchedule &s) {
  qtf::LinearOp linear;
  bool gathers = false;
  kernel.walk([&](Operation *op) {
    if (auto l = dyn_cast<qtf::LinearOp>(op))
      linear = l;
    gathers |= isa<qtf::GatherRowsOp>(op);
  });
  std::optional<ArrayRef<int64_t>> block = linear.getWeightBlock();
  const int64_t k = linear.getWeight().getType().getDimSize(1);
  const bool cublasLt = block && (*block)[0] == 128 && (*block)[1] == 128 && k % 512 == 0 && !gathers &&
                        !linear.getBias() &&
                        cast<RankedTensorType>(linear.getInput().getType()).getElementType().isF32();
  if (cublasLt) {
    s.tensorCores = true;
    s.decodeThreads = 128;
    s.decodeLanes = 32;
    s.decodeTile = {4};
    return;
  }
  s.threads = 128;
  s.lanes = 32;
  s.tile = {4};
}

/// A bf16 / f16 / f32 GEMM: cuBLASLt on tensor cores. With
/// --gpu-gemv=generated its decode steps (<= 8 rows) take the generated GEMV
/// of passes/Codegen/GPU/GemvKernel.cpp instead (decode_threads,
/// decode_lanes, decode_tile as the FP8 one: a warp per output column, 4
/// rows per pass over the weight row), the lm_head on the gathered logits
/// rows too.
static void scheduleGemm(const schedule::GpuScheduleOptions &options, GpuSchedule &s) {
  s.tensorCores = true;
  if (!options.generatedGemv)
    return;
  s.decodeThreads = 128;
  s.decodeLanes = 32;
  s.decodeTile = {4};
}

/// The block-wise FP8 linear of a matmul kernel, if it has one.
static bool isFp8Matmul(func::FuncOp kernel) {
  bool fp8 = false;
  kernel.walk([&](qtf::LinearOp linear) { fp8 |= linear.isBlockQuantized(); });
  return fp8;
}

/// The sampler reads one logits row per block in vectors of the row's width:
/// qk_argmax takes the smallest block (up to 1024) that covers the row;
/// qk_topk always 1024 threads, one per sorted slot of its 256 candidates
/// and 256 groups for its bound at any vocab, and ptxas then allows 64
/// registers (with 256 threads it kept 32 and spilled for some small vocabs).
std::pair<ScheduleAttr, ScheduleAttr> qwen::schedule::selectSamplerSchedules(MLIRContext *ctx,
                                                                            int64_t vocab) {
  constexpr int64_t kSamplerThreads = 1024;
  GpuSchedule argmax, topk;
  argmax.vectorWidth = topk.vectorWidth = codegen::gpuRowWidth(vocab);
  argmax.threads = codegen::gpuRowBlock((vocab + argmax.vectorWidth - 1) / argmax.vectorWidth,
                                        kSamplerThreads);
  topk.threads = kSamplerThreads;
  return {argmax.get(ctx), topk.get(ctx)};
}

FailureOr<ScheduleAttr> qwen::schedule::selectGpuSchedule(func::FuncOp kernel,
                                                          const GpuScheduleOptions &options) {
  std::optional<KernelKind> kind = getKernelKind(kernel);
  if (!kind)
    return kernel.emitOpError("has no qkernel.kind to schedule"), failure();
  GpuSchedule s;
  s.threads = options.maxThreads;
  switch (*kind) {
  case KernelKind::Matmul:
    if (isFp8Matmul(kernel))
      scheduleFp8Matmul(kernel, s);
    else
      scheduleGemm(options, s);
    break;
  case KernelKind::Attention:
    if (failed(scheduleAttention(kernel, options, s)))
      return failure();
    break;
  case KernelKind::DeltaRule:
    if (failed(scheduleDeltaRule(kernel, s)))
      return failure();
    break;
  case KernelKind::Experts:
    if (failed(scheduleExperts(kernel, options, s)))
      return failure();
    break;
  default:
    if (codegen::isRowFamily(*kind) && failed(scheduleRows(kernel, *kind, options, s)))
      return failure();
    break;
  }
  return s.get(kernel.getContext());
}
