//===- RowShape.cpp - The row each row family walks -----------------------===//
//
// What qwen-select-schedule sizes a row-family kernel by (its vector width
// and, on the GPU, its block): the row length and the views its vector
// accesses go through. The families themselves read the chosen sizes from
// the kernel's #qkernel.schedule.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"

#include <algorithm>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

Value qwen::codegen::singleComputedResult(func::FuncOp source) {
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  return ret.getNumOperands() == 1 ? computedValue(ret.getOperand(0)) : Value();
}

bool qwen::codegen::isRowFamily(qkernel::KernelKind kind) {
  using K = qkernel::KernelKind;
  switch (kind) {
  case K::Rows:
  case K::GatedNorm:
  case K::Elementwise:
  case K::Embedding:
  case K::KVWrite:
  case K::Conv:
  case K::LayerNorm:
  case K::Gelu:
  case K::Rotary:
  case K::WeightedGather:
  case K::SegmentAttention:
    return true;
  case K::Matmul:
  case K::Attention:
  case K::Router:
  case K::Experts:
  case K::DeltaRule:
  case K::GemmPack:
    return false;
  }
  llvm_unreachable("unknown kernel kind");
}

/// The geometries of the views a family's vector accesses go through.
static SmallVector<RowAccess> geometries(ArrayRef<Value> views) {
  SmallVector<RowAccess> accesses;
  for (Value view : views)
    accesses.push_back(KernelTarget::viewGeometry(view));
  return accesses;
}

static int64_t lastDim(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape().back();
}

/// The row of a kernel of one `OpT` (named `name` in errors): `shape(op)`.
template <typename OpT, typename ShapeFn>
static FailureOr<RowShape> singleOpShape(func::FuncOp kernel, StringRef name, ShapeFn shape) {
  auto matched = matchSingleOpKernel<OpT>(kernel, name);
  if (failed(matched))
    return failure();
  return shape(matched->first);
}

static FailureOr<RowShape> rowsShape(func::FuncOp kernel) {
  Value output = singleComputedResult(kernel);
  if (!output)
    return kernel.emitOpError("rows kernel must have one result"), failure();
  return RowShape{lastDim(output), {}};
}

static FailureOr<RowShape> elementwiseShape(func::FuncOp kernel) {
  FailureOr<ElementwisePattern> pattern = matchElementwiseKernel(kernel);
  if (failed(pattern))
    return failure();
  // Every vector access must stay aligned: the operands read per column.
  SmallVector<Value> columnOperands;
  if (pattern->combine) {
    columnOperands.push_back(pattern->combine.getSlots());
    if (pattern->residual)
      columnOperands.push_back(pattern->residual);
  } else {
    columnOperands.push_back(pattern->op->getOperand(0));
    if (!pattern->broadcastGate)
      columnOperands.push_back(pattern->op->getOperand(1));
  }
  return RowShape{pattern->columns, geometries(columnOperands)};
}

static FailureOr<RowShape> embeddingShape(func::FuncOp kernel) {
  Value output = singleComputedResult(kernel);
  // Vision-language models: image rows in place of image tokens.
  if (auto multimodal = output ? output.getDefiningOp<qtf::MultimodalEmbeddingOp>() : nullptr)
    return RowShape{multimodal.getTable().getType().getDimSize(1),
                    geometries({multimodal.getTable(), multimodal.getImageEmbeds()})};
  auto embedding = output ? output.getDefiningOp<qtf::EmbeddingOp>() : nullptr;
  if (!embedding)
    return kernel.emitOpError("embedding kernel must return one embedding"), failure();
  return RowShape{embedding.getTable().getType().getDimSize(1), geometries({embedding.getTable()})};
}

static FailureOr<RowShape> kvWriteShape(func::FuncOp kernel) {
  qtf::KVCacheWriteOp write;
  kernel.walk([&](qtf::KVCacheWriteOp op) { write = op; });
  if (!write)
    return kernel.emitOpError("kv_write kernel has no kv_cache_write"), failure();
  return RowShape{write.getCache().getType().getHeadDim(), {}};
}

FailureOr<RowShape> qwen::codegen::getRowShape(func::FuncOp kernel, qkernel::KernelKind kind) {
  using K = qkernel::KernelKind;
  switch (kind) {
  case K::Rows:
    return rowsShape(kernel);
  case K::Elementwise:
    return elementwiseShape(kernel);
  case K::Embedding:
    return embeddingShape(kernel);
  case K::KVWrite:
    return kvWriteShape(kernel);
  case K::GatedNorm:
    return singleOpShape<qtf::GatedRmsNormOp>(kernel, "gated_norm", [](qtf::GatedRmsNormOp norm) {
      return RowShape{lastDim(norm.getResult()), geometries({norm.getInput(), norm.getGate()})};
    });
  case K::Conv:
    // Each lane carries its columns' window across the step's tokens.
    return singleOpShape<qtf::CausalConv1dOp>(kernel, "conv", [](qtf::CausalConv1dOp conv) {
      return RowShape{conv.getState().getType().getConvChannels(), {}, /*lanePerColumn=*/true};
    });
  case K::LayerNorm:
    return singleOpShape<qtf::LayerNormOp>(kernel, "layer_norm", [](qtf::LayerNormOp norm) {
      return RowShape{lastDim(norm.getResult()), geometries({norm.getInput()})};
    });
  case K::Gelu:
    return singleOpShape<qtf::GeluOp>(kernel, "gelu", [](qtf::GeluOp gelu) {
      return RowShape{lastDim(gelu.getResult()), geometries({gelu.getInput()})};
    });
  case K::Rotary:
    // Each lane rotates a vector of the first half with its partner in the second.
    return singleOpShape<qtf::RotaryEmbeddingOp>(
        kernel, "rotary_embedding", [](qtf::RotaryEmbeddingOp rotary) {
          return RowShape{lastDim(rotary.getResult()) / 2,
                          geometries({rotary.getInput(), rotary.getCos(), rotary.getSin()})};
        });
  case K::WeightedGather:
    return singleOpShape<qtf::WeightedGatherOp>(
        kernel, "weighted_gather", [](qtf::WeightedGatherOp gather) {
          return RowShape{gather.getTable().getType().getDimSize(1),
                          geometries({gather.getTable()})};
        });
  case K::SegmentAttention:
    return singleOpShape<qtf::SegmentAttentionOp>(
        kernel, "segment_attention", [](qtf::SegmentAttentionOp attention) {
          return RowShape{lastDim(attention.getResult()),
                          geometries({attention.getQuery(), attention.getKey(), attention.getValue()})};
        });
  default:
    return kernel.emitOpError("is not a row-family kernel"), failure();
  }
}

int64_t qwen::codegen::gpuRowWidth(int64_t length, ArrayRef<RowAccess> accesses) {
  auto fits = [&](int64_t width) {
    if (length % width)
      return false;
    for (const RowAccess &acc : accesses) {
      if (acc.rowStride % width || acc.offset % width)
        return false;
      if (acc.units > 1 && acc.unitWidth % width)
        return false;
    }
    return true;
  };
  int64_t width = 4;
  while (width > 1 && !fits(width))
    width /= 2;
  return width;
}

int64_t qwen::codegen::gpuRowBlock(int64_t vectors, int64_t maxThreads) {
  constexpr int64_t kWarpSize = 32;
  int64_t size = kWarpSize;
  while (size < vectors && size < maxThreads)
    size *= 2;
  return std::min(size, std::max<int64_t>(maxThreads, kWarpSize));
}
