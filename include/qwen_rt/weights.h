//===- weights.h - Host memory and the weights of an artifact ---*- C++ -*-===//
//
// Binds every weight of the manifest to memory: the checkpoint's mmap'd bytes
// when nothing has to change (zero copy), else a 64-byte aligned copy that
// concatenates several sources and/or converts the dtype. Or, for benchmarks
// of real-size configs, seeded pseudo-random values without any checkpoint.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_WEIGHTS_H
#define QWEN_RT_WEIGHTS_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/safetensors.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwen::rt {

class ThreadPool;

/// Zero-filled, page-aligned (so 64-byte aligned) host memory from an
/// anonymous mapping: pages are committed when first touched, so a large KV
/// cache or arena costs only what is used. Move-only.
class HostBuffer {
public:
  HostBuffer() = default;
  /// Throws Error naming `what` when the memory cannot be mapped.
  HostBuffer(uint64_t bytes, const std::string &what);
  HostBuffer(HostBuffer &&o) noexcept { *this = std::move(o); }
  HostBuffer &operator=(HostBuffer &&o) noexcept;
  HostBuffer(const HostBuffer &) = delete;
  HostBuffer &operator=(const HostBuffer &) = delete;
  ~HostBuffer();

  uint8_t *data() const { return Data; }
  uint64_t size() const { return Size; }

private:
  uint8_t *Data = nullptr;
  uint64_t Size = 0, Mapped = 0;
};

/// One entry of a weight's "sources": a checkpoint tensor, or rows
/// [rowBegin, rowEnd) of its leading dimension, written "name[begin:end]".
struct WeightSource {
  std::string tensor;
  int64_t rowBegin = 0, rowEnd = -1; ///< rowEnd < 0: every row
};
/// Parses a source entry. Throws Error for a malformed row range.
WeightSource parseWeightSource(const std::string &source);

/// The bytes one source contributes to a weight.
struct SourceView {
  const TensorView *tensor = nullptr;
  const uint8_t *data = nullptr; ///< first element of the (sliced) rows
  int64_t numel = 0;
  /// F8_E4M3 sources: the tensor's weight_scale_inv [ceil(N / block rows),
  /// ceil(K / block columns)], the tensor row of the first element, and the
  /// row width K; element (r, k) is fp8(r, k) * scale[r / bn][k / bk]. A
  /// fused [E, N, K] tensor (MoE experts) has [E, ceil(N / bn), ceil(K / bk)]
  /// scales, one grid per matrix: rows counts the rows of a matrix (N) and
  /// firstRow is a flattened row.
  const TensorView *scale = nullptr;
  int64_t firstRow = 0, columns = 0, rows = 0;
};
/// Finds every source of `w` in `archive` and checks that together they fill
/// `w` row by row: each (sliced) tensor holds whole rows of `w` (its last
/// dimension equals w's, leading dimensions are flattened, as for a fused
/// [experts, rows, cols] tensor) and the row counts add up to w's. An
/// F8_E4M3 tensor (FP8 checkpoints) needs w.fp8Block and a
/// `<name>_scale_inv` of f32 or bf16 blocks of the matching shape (2-D, or
/// 3-D per matrix for a fused [E, N, K] tensor). Throws
/// Error naming the tensor; `hint` ends each message.
std::vector<SourceView> resolveWeightSources(const SafetensorsArchive &archive, const WeightSpec &w,
                                             const std::string &hint);

/// The bound weights, indexed like Artifact::weights().
class WeightStore {
public:
  /// Binds every weight from `archive`, checking names, shapes and dtypes.
  /// Conversions run on `pool`. progress: print a percentage line to stderr
  /// while binding. Throws Error.
  static WeightStore bind(const Artifact &artifact, SafetensorsArchive archive, ThreadPool &pool, bool progress);
  /// The same for the weights `specs` (the vision program's).
  static WeightStore bind(const std::vector<WeightSpec> &specs, SafetensorsArchive archive, ThreadPool &pool,
                          bool progress);
  /// Fills every weight with seeded pseudo-random values: approximately
  /// normal * 0.02, and 1.0 for weights whose (first) checkpoint name ends in
  /// "norm.weight". Deterministic for a seed, whatever the thread count.
  static WeightStore random(const Artifact &artifact, uint64_t seed, ThreadPool &pool, bool progress);

  WeightStore(WeightStore &&) noexcept = default;
  WeightStore &operator=(WeightStore &&) noexcept = default;

  /// Data of the i-th weight of Artifact::weights().
  void *data(size_t index) const { return Pointers[index]; }
  uint64_t totalBytes() const { return TotalBytes; }
  /// Bytes bound zero-copy from the checkpoint mapping.
  uint64_t mappedBytes() const { return MappedBytes; }

private:
  WeightStore() = default;
  std::optional<SafetensorsArchive> Archive;
  std::vector<HostBuffer> Owned;
  std::vector<void *> Pointers;
  uint64_t TotalBytes = 0, MappedBytes = 0;
};

/// "1.5 GiB", "12.0 MiB", "512 B".
std::string formatBytes(uint64_t bytes);

} // namespace qwen::rt

#endif // QWEN_RT_WEIGHTS_H
