//===- QKernelSchedule.cpp - #qkernel.schedule ----------------------------===//
#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace qwen::qkernel;

LogicalResult ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   ScheduleTarget target, int64_t threads, int64_t grain,
                                   int64_t vectorWidth, int64_t lanes, DenseI64ArrayAttr tile,
                                   int64_t tileLanes, int64_t stages, bool tensorCores,
                                   DotKind dot, int64_t decodeThreads, int64_t decodeLanes,
                                   DenseI64ArrayAttr decodeTile, DotKind decodeDot,
                                   int64_t splits, int64_t combineThreads,
                                   DenseI64ArrayAttr rowWidths, int64_t splitKeys,
                                   int64_t panel, DenseI64ArrayAttr prefillTile,
                                   int64_t prefillTokens) {
  auto isPowerOfTwo = [](int64_t n) { return n > 0 && (n & (n - 1)) == 0; };
  auto positive = [](DenseI64ArrayAttr array) {
    return !array || (!array.empty() && llvm::all_of(array.asArrayRef(),
                                                     [](int64_t v) { return v > 0; }));
  };
  if (!positive(tile) || !positive(decodeTile) || !positive(prefillTile))
    return emitError() << "tile sizes must be positive";
  if (stages < 1)
    return emitError() << "stages must be at least 1";
  if (splits < 0)
    return emitError() << "splits must not be negative";
  if (!isPowerOfTwo(vectorWidth))
    return emitError() << "vector_width must be a power of two, got " << vectorWidth;
  const int64_t maxWidth = target == ScheduleTarget::Cpu ? 16 : 4;
  if (rowWidths) {
    ArrayRef<int64_t> pairs = rowWidths.asArrayRef();
    if (pairs.empty() || pairs.size() % 2)
      return emitError() << "row_widths must be [length, width] pairs";
    for (size_t i = 0; i < pairs.size(); i += 2)
      if (pairs[i] < 1 || !isPowerOfTwo(pairs[i + 1]) || pairs[i + 1] > maxWidth ||
          pairs[i] % pairs[i + 1])
        return emitError() << "row_widths: width " << pairs[i + 1]
                           << " must be a power of two of at most " << maxWidth
                           << " that divides its length " << pairs[i];
  }
  if (splitKeys < 0)
    return emitError() << "split_keys must not be negative";
  if (splitKeys && splits < 2)
    return emitError() << "split_keys needs splits of at least 2";
  if (target == ScheduleTarget::Cpu) {
    if (vectorWidth > 16)
      return emitError() << "cpu vector_width must be at most 16, got " << vectorWidth;
    if (grain < 1)
      return emitError() << "cpu schedule needs a positive grain";
    if (threads || lanes || tileLanes || decodeThreads || decodeLanes || combineThreads ||
        tensorCores)
      return emitError() << "threads, lanes and tensor_cores are cuda parameters";
    if (dot == DotKind::None && decodeDot != DotKind::None)
      return emitError() << "decode_dot needs a dot";
    if (panel < 0 || prefillTokens < 0)
      return emitError() << "panel and prefill_tokens must not be negative";
    if ((panel || prefillTile || prefillTokens) &&
        (!panel || !prefillTile || prefillTile.size() != 2 || dot == DotKind::None ||
         panel % prefillTile[1] || prefillTokens < prefillTile[0]))
      return emitError() << "the blocked prefill needs a dot, a panel, prefill_tile = "
                            "[tokens, weight rows] whose weight rows divide the panel, and "
                            "prefill_tokens of at least a tile's tokens";
    return success();
  }
  auto isBlock = [](int64_t n) { return n >= 32 && n <= 1024 && n % 32 == 0; };
  if (!isBlock(threads))
    return emitError() << "cuda threads must be a multiple of 32 in [32, 1024], got " << threads;
  if (vectorWidth > 4)
    return emitError() << "cuda vector_width must be at most 4 (16-byte loads), got "
                       << vectorWidth;
  if (grain || dot != DotKind::None || decodeDot != DotKind::None)
    return emitError() << "grain, dot and decode_dot are cpu parameters";
  if (panel || prefillTile || prefillTokens)
    return emitError() << "panel, prefill_tile and prefill_tokens are cpu parameters";
  for (int64_t laneCount : {lanes, tileLanes, decodeLanes})
    if (laneCount && (!isPowerOfTwo(laneCount) || laneCount > 32))
      return emitError() << "lanes must be a power of two of at most 32 (one warp)";
  if (decodeThreads && !isBlock(decodeThreads))
    return emitError() << "cuda decode_threads must be a multiple of 32 in [32, 1024]";
  if (decodeLanes && decodeLanes > decodeThreads)
    return emitError() << "decode_lanes must not exceed decode_threads";
  if (combineThreads < 0 || combineThreads > 1024)
    return emitError() << "combine_threads must be in [0, 1024]";
  if (combineThreads && splits < 2)
    return emitError() << "combine_threads needs splits of at least 2";
  return success();
}

ScheduleAttr qwen::qkernel::getSchedule(Operation *kernel) {
  return kernel->getAttrOfType<ScheduleAttr>(kScheduleAttrName);
}

FailureOr<ScheduleAttr> qwen::qkernel::requireSchedule(Operation *kernel,
                                                       ScheduleTarget target) {
  ScheduleAttr schedule = getSchedule(kernel);
  if (!schedule)
    return kernel->emitOpError("has no #qkernel.schedule: run qwen-select-schedule first"),
           failure();
  if (schedule.getTarget() != target)
    return kernel->emitOpError("has a schedule for ")
               << stringifyScheduleTarget(schedule.getTarget()) << ", not for "
               << stringifyScheduleTarget(target),
           failure();
  return schedule;
}
