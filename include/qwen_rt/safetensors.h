//===- safetensors.h - Memory-mapped safetensors checkpoints ----*- C++ -*-===//
//
// Reads safetensors files (single or sharded with model.safetensors.index.json)
// by mmap'ing them read-only, and writes small safetensors files (tests, tools).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_SAFETENSORS_H
#define QWEN_RT_SAFETENSORS_H

#include "qwen_rt/dtype.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace qwen::rt {

/// One tensor of a mapped checkpoint. `data` points into the read-only
/// mapping (valid while the archive lives); `file` is the path of the file
/// that holds it.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t nbytes = 0;
  std::string file;
  int64_t numel() const;
};

/// Identity of one safetensors file: its name (relative to the checkpoint
/// folder, as written in weight_map, for openDir; the file name without
/// folders for openFile and probeSafetensorsFile), its size in bytes, and
/// the FNV-1a 64 hash of its header JSON bytes (the bytes after the 8-byte
/// length, padding included).
struct SafetensorsFileInfo {
  std::string name;
  uint64_t size = 0;
  uint64_t headerHash = 0;
};

/// Validates a whole safetensors file held in memory (`origin` names it in
/// errors) and returns its tensors, pointing into `data`. Throws Error.
std::vector<TensorView> parseSafetensorsBytes(const uint8_t *data, size_t size, const std::string &origin);

/// NaN and infinite elements of a floating-point tensor.
struct NonFiniteValues {
  int64_t count = 0;
  int64_t firstIndex = -1; ///< flat index of the first one; -1 when count is 0
};
/// Scans every element of `tensor` (reading all its bytes); integer tensors
/// have none.
NonFiniteValues findNonFinite(const TensorView &tensor);

/// FNV-1a 64 of a safetensors file's header, reading only the header. Throws Error.
SafetensorsFileInfo probeSafetensorsFile(const std::string &path);

/// A set of mmap'd safetensors files. Move-only; files stay mapped
/// (read-only, MAP_PRIVATE) while it lives.
class SafetensorsArchive {
public:
  /// A checkpoint folder: model.safetensors.index.json (sharded; weight_map), else
  /// model.safetensors, else the only *.safetensors file. Throws Error.
  static SafetensorsArchive openDir(const std::string &dir);
  static SafetensorsArchive openFile(const std::string &path);

  SafetensorsArchive(SafetensorsArchive &&) noexcept;
  SafetensorsArchive &operator=(SafetensorsArchive &&) noexcept;
  SafetensorsArchive(const SafetensorsArchive &) = delete;
  SafetensorsArchive &operator=(const SafetensorsArchive &) = delete;
  ~SafetensorsArchive();

  /// The tensor called `name`, or nullptr.
  const TensorView *find(const std::string &name) const;
  /// The tensor called `name`. Error: "checkpoint <dir> has no tensor '<name>'".
  const TensorView &get(const std::string &name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// The mapped files, in the order they were opened.
  const std::vector<SafetensorsFileInfo> &files() const;
  /// The folder (openDir) or file (openFile) this archive was opened from.
  const std::string &source() const { return Source; }

private:
  struct Mapping;
  SafetensorsArchive() = default;

  std::string Source;
  std::vector<std::unique_ptr<Mapping>> Mappings;
  std::vector<SafetensorsFileInfo> Files;
  std::unordered_map<std::string, TensorView> Tensors;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void *data;
};

/// Writes a safetensors file holding `tensors` (in the order given) and
/// optional `__metadata__`. Throws Error when the file cannot be written.
void writeSafetensors(const std::string &path, const std::vector<TensorToWrite> &tensors,
                      const std::map<std::string, std::string> &metadata = {});

} // namespace qwen::rt

#endif // QWEN_RT_SAFETENSORS_H
