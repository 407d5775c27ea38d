//===- QuantizeCheckpoint.cpp - bf16/f16/f32 checkpoint -> block FP8 ------===//
//
// `qwen-compile --weight-dtype=fp8`: the decoder's linear weights become
// block-wise FP8 exactly as transformers' FineGrainedFP8 quantizer writes them
// (integrations/finegrained_fp8.py, Fp8Quantize._quantize_one): per block,
// scale = (1 / amax) * 448 in f32 (1 for an all-zero block), weight_scale_inv =
// 1 / scale, fp8 = e4m3fn(clamp(w * scale, -448, 448)) rounded to nearest
// even; a weight whose rows or columns are not a multiple of the block stays
// as it is (HF skips those too). Fused 3-D experts ([E, 2I, H] gate_up_proj,
// [E, H, I] down_proj, Qwen3.5-MoE) are quantized per expert matrix, their
// `<name>_scale_inv` [E, rows / br, cols / bc], as _quantize_one does over
// leading dimensions. Embeddings, norms, lm_head (HF's
// modules_to_not_convert) and everything else stay in the source dtype.
//
//===----------------------------------------------------------------------===//
#include "qwen/Compiler/QuantizeCheckpoint.h"

#include "qwen_rt/dtype.h"
#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

using namespace qwen;

static llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

uint8_t qwen::f32ToF8E4M3(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint8_t sign = uint8_t((bits >> 24) & 0x80);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u)
    return sign | 0x7f; // NaN
  float a;
  std::memcpy(&a, &magnitude, 4);
  if (a >= 448.0f)
    return sign | 0x7e; // saturate (callers clamp to +-448 first, as HF does)
  if (a < 0x1p-6f) {
    // Subnormal (and the smallest normal, code 8): a multiple of 2^-9,
    // rounded to nearest even by the default rounding mode.
    return sign | uint8_t(std::nearbyint(a * 512.0f));
  }
  // Normal: drop 20 mantissa bits, rounding to nearest even; a carry moves
  // into the exponent as it should. Rebias 127 -> 7.
  uint32_t rounded = magnitude + 0x7ffffu + ((magnitude >> 20) & 1u);
  uint32_t code = (rounded >> 20) - (120u << 3);
  return sign | uint8_t(std::min<uint32_t>(code, 0x7e));
}

namespace {
/// The f32 values of `tensor` (a floating tensor).
std::vector<float> toF32(const rt::TensorView &tensor) {
  std::vector<float> out(size_t(tensor.numel()));
  rt::convertFloats(tensor.dtype, tensor.data, rt::DType::F32, out.data(), out.size());
  return out;
}

/// Whether `name` holds fused experts: one [E, rows, cols] matrix per expert.
bool isFusedExperts(llvm::StringRef name) {
  return name.ends_with(".experts.gate_up_proj") || name.ends_with(".experts.down_proj");
}

/// Whether `name` is a linear weight HF's FP8 quantizer converts: a 2-D
/// floating `.weight` of a decoder layer (not an embedding, norm or the
/// lm_head, which are outside `.layers.`; not the vision tower or MTP head),
/// or a layer's fused 3-D experts, whose matrix shape the block divides.
bool quantizes(const std::string &name, const rt::TensorView &tensor,
               const std::array<int64_t, 2> &block) {
  llvm::StringRef n(name);
  if (!n.contains(".layers.") || n.starts_with("mtp.") || n.contains("visual."))
    return false;
  const bool fused = isFusedExperts(n) && tensor.shape.size() == 3;
  if (!fused && (!n.ends_with(".weight") || tensor.shape.size() != 2))
    return false;
  if (tensor.dtype != rt::DType::F32 && tensor.dtype != rt::DType::BF16 &&
      tensor.dtype != rt::DType::F16)
    return false;
  const size_t rank = tensor.shape.size();
  return tensor.shape[rank - 2] % block[0] == 0 && tensor.shape[rank - 1] % block[1] == 0;
}

llvm::Error copyFile(const std::string &from, const std::string &to) {
  if (std::error_code ec = llvm::sys::fs::copy_file(from, to))
    return error("cannot copy " + from + " to " + to + ": " + ec.message());
  return llvm::Error::success();
}
} // namespace

void qwen::quantizeFp8Blocks(const float *w, int64_t rows, int64_t cols,
                             const std::array<int64_t, 2> &block, uint8_t *q, float *scaleInv) {
  const int64_t br = block[0], bc = block[1];
  const int64_t blockCols = (cols + bc - 1) / bc;
  for (int64_t r0 = 0; r0 < rows; r0 += br)
    for (int64_t c0 = 0; c0 < cols; c0 += bc) {
      const int64_t r1 = std::min(rows, r0 + br), c1 = std::min(cols, c0 + bc);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          amax = std::max(amax, std::fabs(w[r * cols + c]));
      // torch evaluates `448.0 / amax` (a Python float over a tensor) as
      // amax.reciprocal() * 448: two roundings, kept for byte-equal scales.
      const float scale = amax > 0.0f ? (1.0f / amax) * 448.0f : 1.0f;
      scaleInv[(r0 / br) * blockCols + c0 / bc] = 1.0f / scale;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          q[r * cols + c] = f32ToF8E4M3(std::clamp(w[r * cols + c] * scale, -448.0f, 448.0f));
    }
}

llvm::Expected<QuantizedCheckpoint>
qwen::quantizeCheckpointFp8(const std::string &sourceDir, const std::string &outDir,
                            const std::array<int64_t, 2> &block) {
  std::string configPath = sourceDir + "/config.json";
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> text = llvm::MemoryBuffer::getFile(configPath);
  if (!text)
    return error("--weight-dtype=fp8 needs a checkpoint folder with config.json; cannot read " +
                 configPath);
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse((*text)->getBuffer());
  if (!parsed)
    return error(configPath + ": " + llvm::toString(parsed.takeError()));
  llvm::json::Object *config = parsed->getAsObject();
  if (!config)
    return error(configPath + ": expected a JSON object");
  if (const llvm::json::Value *q = config->get("quantization_config");
      q && q->kind() != llvm::json::Value::Null)
    return error("--weight-dtype=fp8 quantizes bf16, f16 or f32 checkpoints, but " + sourceDir +
                 " is already quantized (quantization_config); compile it without --weight-dtype");

  QuantizedCheckpoint result;
  result.dir = outDir;
  try {
    rt::SafetensorsArchive archive = rt::SafetensorsArchive::openDir(sourceDir);
    std::vector<std::string> names = archive.names();
    for (const std::string &name : names)
      if (archive.get(name).dtype == rt::DType::F8E4M3)
        return error("--weight-dtype=fp8 quantizes bf16, f16 or f32 checkpoints, but tensor '" +
                     name + "' of " + sourceDir + " is already f8e4m3");
    // Quantized weights and their scales live here; the other tensors are
    // written from the mapped checkpoint.
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<std::vector<float>> scales;
    std::vector<rt::TensorToWrite> tensors;
    bytes.reserve(names.size());
    scales.reserve(names.size());
    for (const std::string &name : names) {
      const rt::TensorView &tensor = archive.get(name);
      if (!quantizes(name, tensor, block)) {
        tensors.push_back({name, tensor.dtype, tensor.shape, tensor.data});
        continue;
      }
      // A 2-D weight is one matrix; fused experts one per expert, each
      // with its own scale grid.
      const size_t rank = tensor.shape.size();
      const int64_t matrices = rank == 3 ? tensor.shape[0] : 1;
      const int64_t rows = tensor.shape[rank - 2], cols = tensor.shape[rank - 1];
      const int64_t gridRows = rows / block[0], gridCols = cols / block[1];
      std::vector<float> wide = toF32(tensor);
      bytes.emplace_back(size_t(matrices * rows * cols));
      scales.emplace_back(size_t(matrices * gridRows * gridCols));
      for (int64_t e = 0; e < matrices; ++e)
        quantizeFp8Blocks(wide.data() + e * rows * cols, rows, cols, block,
                          bytes.back().data() + e * rows * cols,
                          scales.back().data() + e * gridRows * gridCols);
      tensors.push_back({name, rt::DType::F8E4M3, tensor.shape, bytes.back().data()});
      // HF names a `.weight`'s scales `.weight_scale_inv`, the fused experts'
      // `<name>_scale_inv` (both: name + "_scale_inv").
      std::vector<int64_t> scaleShape = {gridRows, gridCols};
      if (rank == 3)
        scaleShape.insert(scaleShape.begin(), matrices);
      tensors.push_back({name + "_scale_inv", rt::DType::F32, scaleShape, scales.back().data()});
      ++result.quantized;
    }
    if (result.quantized == 0)
      return error("--weight-dtype=fp8 found no decoder linear weight whose shape blocks of " +
                   llvm::Twine(block[0]) + "x" + llvm::Twine(block[1]) + " divide in " + sourceDir);
    if (std::error_code ec = llvm::sys::fs::create_directories(outDir))
      return error("cannot create " + outDir + ": " + ec.message());
    rt::writeSafetensors(outDir + "/model.safetensors", tensors, {{"format", "pt"}});
  } catch (const rt::Error &e) {
    return error(e.what());
  }

  // config.json with HF's FineGrainedFP8Config; the tokenizer files as they are.
  (*config)["quantization_config"] = llvm::json::Object{
      {"quant_method", "fp8"},
      {"fmt", "e4m3"},
      {"activation_scheme", "dynamic"},
      {"weight_block_size", llvm::json::Array{block[0], block[1]}},
      {"modules_to_not_convert", llvm::json::Array{"lm_head"}}};
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(outDir + "/config.json", ec, llvm::sys::fs::OF_Text);
    if (ec)
      return error("cannot write " + outDir + "/config.json: " + ec.message());
    out << llvm::formatv("{0:2}", llvm::json::Value(std::move(*parsed))) << "\n";
  }
  // The image preprocessing and chat template files too: the runtime reads
  // them from the checkpoint it binds (the quantized copy).
  for (const char *file : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                           "special_tokens_map.json", "vocab.json", "merges.txt",
                           "chat_template.jinja", "preprocessor_config.json"})
    if (llvm::sys::fs::exists(sourceDir + "/" + file))
      if (llvm::Error failed = copyFile(sourceDir + "/" + file, outDir + "/" + file))
        return std::move(failed);
  return result;
}
