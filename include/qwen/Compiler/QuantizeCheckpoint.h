//===- QuantizeCheckpoint.h - bf16/f16/f32 checkpoint -> block FP8 -*- C++ -*-===//
//
// `qwen-compile --weight-dtype=fp8`: writes a block-wise FP8 copy of a
// checkpoint (HF's FineGrainedFP8 format: float8_e4m3fn weights with
// `<name>_scale_inv` f32 blocks and quantization_config quant_method fp8),
// which the artifact then binds.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_COMPILER_QUANTIZECHECKPOINT_H
#define QWEN_COMPILER_QUANTIZECHECKPOINT_H

#include "llvm/Support/Error.h"

#include <array>
#include <cstdint>
#include <string>

namespace qwen {

/// The block HF's FineGrainedFP8Config and Qwen's FP8 releases use.
inline constexpr std::array<int64_t, 2> kFp8Block = {128, 128};

struct QuantizedCheckpoint {
  std::string dir;       ///< the folder written
  int64_t quantized = 0; ///< weights converted to fp8
};

/// e4m3fn of `value`, rounded to nearest even; +-448 and beyond saturate.
uint8_t f32ToF8E4M3(float value);

/// Quantizes a row-major [rows, cols] f32 weight per `block` as HF's
/// FineGrainedFP8 quantizer does: scale = (1 / amax) * 448 (torch's
/// `448 / tensor`; 1 when all zero),
/// scaleInv = 1 / scale ([ceil(rows / br), ceil(cols / bc)]), q =
/// e4m3fn(clamp(w * scale, -448, 448)).
void quantizeFp8Blocks(const float *w, int64_t rows, int64_t cols,
                       const std::array<int64_t, 2> &block, uint8_t *q, float *scaleInv);

/// Writes `outDir`/{model.safetensors, config.json, tokenizer files}: the
/// checkpoint of `sourceDir` with every decoder linear weight that `block`
/// divides in block-wise FP8. Errors for a checkpoint that is already
/// quantized or has nothing to quantize.
llvm::Expected<QuantizedCheckpoint> quantizeCheckpointFp8(const std::string &sourceDir,
                                                          const std::string &outDir,
                                                          const std::array<int64_t, 2> &block);

} // namespace qwen

#endif // QWEN_COMPILER_QUANTIZECHECKPOINT_H
