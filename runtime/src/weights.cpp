//===- weights.cpp - Host memory and weight binding -----------------------===//

#include "qwen_rt/weights.h"

#include "qwen_rt/error.h"
#include "qwen_rt/thread_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace qwen::rt {

//===----------------------------------------------------------------------===//
// HostBuffer
//===----------------------------------------------------------------------===//

HostBuffer::HostBuffer(uint64_t bytes, const std::string &what) : Size(bytes) {
  Mapped = std::max<uint64_t>(bytes, 64);
  void *p = mmap(nullptr, Mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw Error("cannot allocate " + formatBytes(bytes) + " for " + what + ": " + std::strerror(errno));
  Data = static_cast<uint8_t *>(p);
}

HostBuffer &HostBuffer::operator=(HostBuffer &&o) noexcept {
  if (this != &o) {
    if (Data)
      munmap(Data, Mapped);
    Data = o.Data;
    Size = o.Size;
    Mapped = o.Mapped;
    o.Data = nullptr;
    o.Size = o.Mapped = 0;
  }
  return *this;
}

HostBuffer::~HostBuffer() {
  if (Data)
    munmap(Data, Mapped);
}

std::string formatBytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (uint64_t(1) << 30))
    std::snprintf(buf, sizeof(buf), "%.2f GiB", double(bytes) / double(uint64_t(1) << 30));
  else if (bytes >= (uint64_t(1) << 20))
    std::snprintf(buf, sizeof(buf), "%.1f MiB", double(bytes) / double(uint64_t(1) << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", double(bytes) / 1024.0);
  else
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

//===----------------------------------------------------------------------===//
// Progress line
//===----------------------------------------------------------------------===//

namespace {
class Progress {
public:
  /// Shown only for large totals (bytes), where loading takes a noticeable time.
  Progress(bool enabled, const char *what, uint64_t total)
      : Enabled(enabled && total >= (uint64_t(256) << 20)), What(what), Total(total) {}
  void advance(uint64_t amount) {
    Current += amount;
    if (!Enabled || Total == 0)
      return;
    int percent = int(100.0 * double(Current) / double(Total));
    if (percent != Shown) {
      Shown = percent;
      std::fprintf(stderr, "\rqwen-run: %s %3d%%", What, percent);
      std::fflush(stderr);
    }
  }
  ~Progress() {
    if (Enabled && Shown >= 0)
      std::fprintf(stderr, "\n");
  }

private:
  bool Enabled;
  const char *What;
  uint64_t Total, Current = 0;
  int Shown = -1;
};

bool isFloat(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }

std::string describeWeight(const WeightSpec &w) {
  std::string s = "weight " + std::to_string(w.id) + " (" + w.sources[0];
  if (w.sources.size() > 1)
    s += " and " + std::to_string(w.sources.size() - 1) + " more";
  return s + ")";
}

/// Dequantizes the rows of an FP8 source into `dst`: fp8(r, k) times its
/// block's scale, in f32 (HF's dequantization), then rounded to `dst`.
void dequantizeFp8(ThreadPool &pool, const SourceView &v, const std::array<int64_t, 2> &block, DType dst,
                   uint8_t *out) {
  const int64_t rows = v.numel / v.columns, K = v.columns;
  const size_t rank = v.scale->shape.size();
  const int64_t scaleColumns = v.scale->shape[rank - 1], matrixScaleRows = v.scale->shape[rank - 2];
  pool.parallelFor(rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t r = begin; r < end; ++r) {
      // One block grid per matrix of v.rows rows (one matrix when 2-D).
      const int64_t flat = v.firstRow + r, matrix = flat / v.rows;
      const int64_t scaleRow = matrix * matrixScaleRows + (flat % v.rows) / block[0];
      for (int64_t k = 0; k < K; ++k) {
        const int64_t at = scaleRow * scaleColumns + k / block[1];
        float scale;
        if (v.scale->dtype == DType::F32)
          std::memcpy(&scale, v.scale->data + at * 4, 4);
        else {
          uint16_t bits;
          std::memcpy(&bits, v.scale->data + at * 2, 2);
          scale = bf16ToF32(bits);
        }
        row[size_t(k)] = f8e4m3ToF32(v.data[r * K + k]) * scale;
      }
      convertFloats(DType::F32, row.data(), dst, out + uint64_t(r * K) * dtypeSize(dst), size_t(K));
    }
  });
}

/// Copies or converts n elements, splitting large tensors across the pool.
void copyElements(ThreadPool &pool, DType src, const uint8_t *in, DType dst, uint8_t *out, int64_t n) {
  constexpr int64_t kGrain = int64_t(1) << 18;
  int64_t pieces = (n + kGrain - 1) / kGrain;
  pool.parallelFor(pieces, [&](int64_t b, int64_t e) {
    int64_t lo = b * kGrain, hi = std::min(n, e * kGrain);
    if (src == dst)
      std::memcpy(out + lo * dtypeSize(dst), in + lo * dtypeSize(src), size_t(hi - lo) * dtypeSize(src));
    else
      convertFloats(src, in + lo * dtypeSize(src), dst, out + lo * dtypeSize(dst), size_t(hi - lo));
  });
}
} // namespace

//===----------------------------------------------------------------------===//
// Sources
//===----------------------------------------------------------------------===//

/// The block scales of FP8 tensor `name` (`<name>_scale_inv`, HF's
/// weight_scale_inv: the factor that dequantizes each block), checked.
static const TensorView *fp8Scales(const SafetensorsArchive &archive, const std::string &name,
                                   const TensorView &tensor, const WeightSpec &w, const std::string &hint) {
  if (w.fp8Block[0] <= 0 || w.fp8Block[1] <= 0)
    throw Error("checkpoint tensor '" + name + "' is f8e4m3, but the artifact was compiled without an fp8 "
                "quantization_config (weight_block_size)" + hint);
  const size_t rank = tensor.shape.size();
  if (rank != 2 && rank != 3)
    throw Error("FP8 checkpoint tensor '" + name + "' has shape " + formatShape(tensor.shape) +
                "; block-wise FP8 weights are 2-D [out, in] or fused experts [E, out, in]" + hint);
  const std::string scaleName = name + "_scale_inv";
  const TensorView *scale = archive.find(scaleName);
  if (!scale)
    throw Error("FP8 checkpoint tensor '" + name + "' has no block scales '" + scaleName + "'" + hint);
  if (scale->dtype != DType::F32 && scale->dtype != DType::BF16)
    throw Error("FP8 block scales '" + scaleName + "' are " + dtypeName(scale->dtype) +
                "; expected f32 or bf16" + hint);
  // Fused experts: one block grid per expert matrix.
  std::vector<int64_t> want = {(tensor.shape[rank - 2] + w.fp8Block[0] - 1) / w.fp8Block[0],
                               (tensor.shape[rank - 1] + w.fp8Block[1] - 1) / w.fp8Block[1]};
  if (rank == 3)
    want.insert(want.begin(), tensor.shape[0]);
  if (scale->shape != want)
    throw Error("FP8 block scales '" + scaleName + "' have shape " + formatShape(scale->shape) + ", but " +
                formatShape(tensor.shape) + " in blocks of " + std::to_string(w.fp8Block[0]) + "x" +
                std::to_string(w.fp8Block[1]) + " needs " + formatShape(want) + hint);
  return scale;
}

WeightSource parseWeightSource(const std::string &source) {
  WeightSource s;
  s.tensor = source;
  if (source.empty() || source.back() != ']')
    return s;
  size_t open = source.rfind('[');
  size_t colon = source.find(':', open == std::string::npos ? 0 : open);
  auto bad = [&]() {
    return Error("weight source '" + source + "' is malformed (expected a tensor name or NAME[BEGIN:END])");
  };
  if (open == std::string::npos || open == 0 || colon == std::string::npos)
    throw bad();
  try {
    size_t used = 0;
    std::string first = source.substr(open + 1, colon - open - 1);
    std::string second = source.substr(colon + 1, source.size() - colon - 2);
    s.rowBegin = std::stoll(first, &used);
    if (used != first.size())
      throw bad();
    s.rowEnd = std::stoll(second, &used);
    if (used != second.size())
      throw bad();
  } catch (const std::logic_error &) {
    throw bad();
  }
  if (s.rowBegin < 0 || s.rowEnd <= s.rowBegin)
    throw bad();
  s.tensor = source.substr(0, open);
  return s;
}

std::vector<SourceView> resolveWeightSources(const SafetensorsArchive &archive, const WeightSpec &w,
                                             const std::string &hint) {
  int64_t rowElements = 1;
  for (size_t d = 1; d < w.shape.size(); ++d)
    rowElements *= w.shape[d];
  std::vector<SourceView> views;
  int64_t rows = 0;
  std::string parts;
  for (const std::string &entry : w.sources) {
    WeightSource source = parseWeightSource(entry);
    const TensorView *v = archive.find(source.tensor);
    if (!v)
      throw Error("checkpoint " + archive.source() + " has no tensor '" + source.tensor + "' needed by " +
                  describeWeight(w) + hint);
    const bool fp8 = v->dtype == DType::F8E4M3;
    if (v->dtype != w.dtype && !((isFloat(v->dtype) || fp8) && isFloat(w.dtype)))
      throw Error("checkpoint tensor '" + source.tensor + "' is " + dtypeName(v->dtype) + ", and " +
                  describeWeight(w) + " wants " + dtypeName(w.dtype) +
                  "; the runtime converts only between floating types");
    SourceView view{v, v->data, v->numel()};
    std::vector<int64_t> shape = v->shape;
    if (fp8)
      view.scale = fp8Scales(archive, source.tensor, *v, w, hint);
    if (fp8) {
      // Flattened rows: a row slice of a fused [E, N, K] tensor selects experts.
      view.rows = shape[shape.size() - 2];
      view.firstRow = std::max<int64_t>(source.rowBegin, 0) * (shape.size() == 3 ? view.rows : 1);
      view.columns = shape.back();
    }
    if (source.rowEnd >= 0) {
      if (shape.empty() || source.rowEnd > shape[0])
        throw Error("weight source '" + entry + "' selects rows outside tensor '" + source.tensor + "' of shape " +
                    formatShape(shape) + hint);
      int64_t perRow = shape[0] ? view.numel / shape[0] : 0;
      view.data += uint64_t(source.rowBegin * perRow) * dtypeSize(v->dtype);
      view.numel = (source.rowEnd - source.rowBegin) * perRow;
      shape[0] = source.rowEnd - source.rowBegin;
    }
    bool fits = view.numel % rowElements == 0 &&
                (w.shape.size() < 2 || (!shape.empty() && shape.back() == w.shape.back()));
    if (w.sources.size() == 1)
      fits = fits && view.numel == w.numel();
    // A Conv3d kernel whose size is its stride [out, C, T, P, P] binds as the
    // linear [out, C*T*P*P] over flattened patches (the vision tower).
    if (w.sources.size() == 1 && shape.size() > 2 && w.shape.size() == 2 &&
        shape[0] == w.shape[0] && view.numel == w.numel())
      fits = true;
    if (!fits)
      throw Error("checkpoint tensor '" + entry + "' has shape " + formatShape(shape) + ", but " +
                  describeWeight(w) + " expects " +
                  (w.sources.size() == 1 ? formatShape(w.shape)
                                         : "whole rows of " + formatShape(w.shape)) + hint);
    rows += view.numel / rowElements;
    parts += (parts.empty() ? "" : ", ") + ("'" + entry + "' " + formatShape(shape));
    views.push_back(view);
  }
  if (rows != w.shape[0])
    throw Error("the checkpoint tensors stacked into " + describeWeight(w) + " (" + parts + ") have " +
                std::to_string(rows) + " rows together, but " + formatShape(w.shape) + " is expected" + hint);
  return views;
}

//===----------------------------------------------------------------------===//
// Binding from a checkpoint
//===----------------------------------------------------------------------===//

WeightStore WeightStore::bind(const Artifact &artifact, SafetensorsArchive archive, ThreadPool &pool,
                              bool progress) {
  return bind(artifact.weights(), std::move(archive), pool, progress);
}

WeightStore WeightStore::bind(const std::vector<WeightSpec> &specs, SafetensorsArchive archive,
                              ThreadPool &pool, bool progress) {
  WeightStore s;
  s.Archive.emplace(std::move(archive));
  const SafetensorsArchive &ar = *s.Archive;
  for (const WeightSpec &w : specs)
    s.TotalBytes += w.nbytes();
  s.Owned.resize(specs.size());
  s.Pointers.resize(specs.size());

  Progress bar(progress, "binding weights", s.TotalBytes);
  for (size_t i = 0; i < specs.size(); ++i) {
    const WeightSpec &w = specs[i];
    std::vector<SourceView> views =
        resolveWeightSources(ar, w, "; was the artifact compiled for another model?");
    const SourceView &v0 = views[0];
    bool aligned = reinterpret_cast<uintptr_t>(v0.data) % dtypeSize(w.dtype) == 0;
    if (views.size() == 1 && v0.tensor->dtype == w.dtype && aligned) {
      s.Pointers[i] = const_cast<uint8_t *>(v0.data); // kernels never write weights
      s.MappedBytes += w.nbytes();
    } else {
      s.Owned[i] = HostBuffer(w.nbytes(), describeWeight(w));
      uint8_t *out = s.Owned[i].data();
      for (const SourceView &v : views) {
        // fp8 weights of an fp8 artifact are copied as they are (the kernels
        // apply the scales); only a wider weight dequantizes (an fp8 tensor
        // the graph reads unquantized: fused experts whose blocks straddle
        // gate and up rows, or a module left unquantized by a compile option).
        if (v.scale && w.dtype != DType::F8E4M3)
          dequantizeFp8(pool, v, w.fp8Block, w.dtype, out);
        else
          copyElements(pool, v.tensor->dtype, v.data, w.dtype, out, v.numel);
        out += uint64_t(v.numel) * dtypeSize(w.dtype);
      }
      s.Pointers[i] = s.Owned[i].data();
    }
    bar.advance(w.nbytes());
  }
  return s;
}

//===----------------------------------------------------------------------===//
// Seeded random weights
//===----------------------------------------------------------------------===//

namespace {
uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Writes n values of `dtype` at out: 1.0 when `ones`, else approximately
/// N(0, 0.02^2) (Irwin-Hall sum of four 16-bit uniforms), value i drawn from
/// the counter-based stream mix(state + i).
/// Random block-wise FP8: the fp8 values times kFp8RandomScale (every
/// `_scale_inv` entry) are the same ~N(0, 0.02^2) as the other weights.
constexpr float kFp8RandomScale = 0.1f / 448.0f;

/// e4m3fn of `v` (|v| <= 448), mantissa truncated: random weights only.
uint8_t truncateToF8E4M3(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  uint8_t sign = uint8_t((bits >> 24) & 0x80);
  float a = std::fabs(v);
  if (a < 0x1p-6f)
    return sign | uint8_t(a * 512.0f);
  uint32_t magnitude = bits & 0x7fffffffu;
  return sign | uint8_t(std::min<uint32_t>((magnitude >> 20) - (120u << 3), 0x7e));
}

void fillValues(DType dtype, uint8_t *out, int64_t n, uint64_t state, bool ones) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16 && dtype != DType::F64 &&
      dtype != DType::F8E4M3)
    return; // integer weights stay zero
  constexpr float kScale = 0.02f * 1.7320508f / 65536.0f; // sqrt(3) normalizes the sum of 4 U(0,1)
  constexpr int64_t kBlock = 4096;
  float block[kBlock];
  for (int64_t at = 0; at < n; at += kBlock) {
    int64_t count = std::min(kBlock, n - at);
    for (int64_t i = 0; i < count; ++i) {
      if (ones) {
        block[i] = 1.0f;
        continue;
      }
      uint64_t counter = state + uint64_t(at + i);
      uint64_t r = splitmix64(counter);
      float sum = float(r & 0xffff) + float((r >> 16) & 0xffff) + float((r >> 32) & 0xffff) + float(r >> 48);
      block[i] = (sum - 2.0f * 65536.0f) * kScale;
    }
    uint8_t *dst = out + uint64_t(at) * dtypeSize(dtype);
    if (dtype == DType::F8E4M3) {
      for (int64_t i = 0; i < count; ++i)
        dst[i] = truncateToF8E4M3(std::clamp(block[i] / kFp8RandomScale, -448.0f, 448.0f));
      continue;
    }
    if (dtype == DType::F32)
      std::memcpy(dst, block, size_t(count) * sizeof(float));
    else
      convertFloats(DType::F32, block, dtype, dst, size_t(count));
  }
}
} // namespace

WeightStore WeightStore::random(const Artifact &artifact, uint64_t seed, ThreadPool &pool, bool progress) {
  WeightStore s;
  const std::vector<WeightSpec> &specs = artifact.weights();
  s.Owned.resize(specs.size());
  s.Pointers.resize(specs.size());
  struct Piece {
    size_t weight;
    int64_t begin, end;
  };
  constexpr int64_t kGrain = int64_t(1) << 20;
  std::vector<Piece> pieces;
  for (size_t i = 0; i < specs.size(); ++i) {
    const WeightSpec &w = specs[i];
    s.Owned[i] = HostBuffer(w.nbytes(), describeWeight(w));
    s.Pointers[i] = s.Owned[i].data();
    s.TotalBytes += w.nbytes();
    for (int64_t b = 0; b < w.numel(); b += kGrain)
      pieces.push_back({i, b, std::min(w.numel(), b + kGrain)});
  }
  Progress bar(progress, "filling random weights", s.TotalBytes);
  const int64_t batch = int64_t(pool.numThreads()) * 8;
  for (int64_t first = 0; first < int64_t(pieces.size()); first += batch) {
    int64_t count = std::min<int64_t>(batch, int64_t(pieces.size()) - first);
    pool.parallelFor(count, [&](int64_t b, int64_t e) {
      for (int64_t p = first + b; p < first + e; ++p) {
        const Piece &piece = pieces[p];
        const WeightSpec &w = specs[piece.weight];
        uint64_t state = seed ^ (0x51ed270b27a4a7c3ull * uint64_t(w.id + 1));
        uint64_t chunk = uint64_t(piece.begin / kGrain);
        state = splitmix64(state) ^ splitmix64(chunk);
        uint8_t *dst = s.Owned[piece.weight].data() + uint64_t(piece.begin) * dtypeSize(w.dtype);
        // Row slices of scales too (fp8 projections sliced by the graph).
        if (endsWith(parseWeightSource(w.sources[0]).tensor, "_scale_inv") && w.dtype == DType::F32) {
          std::fill_n(reinterpret_cast<float *>(dst), piece.end - piece.begin, kFp8RandomScale);
          continue;
        }
        bool ones = endsWith(w.sources[0], "norm.weight");
        fillValues(w.dtype, dst, piece.end - piece.begin, state, ones);
      }
    });
    uint64_t bytes = 0;
    for (int64_t p = first; p < first + count; ++p)
      bytes += uint64_t(pieces[size_t(p)].end - pieces[size_t(p)].begin) * dtypeSize(specs[pieces[size_t(p)].weight].dtype);
    bar.advance(bytes);
  }
  return s;
}

} // namespace qwen::rt
