//===- launch_schema.h - The manifest's launch fields, for both sides -*- C++ -*-===//
//
// One description of how a kernel launch is spelled in manifest.json
// (docs/ARTIFACT.md, "program"): the field names, and the limits the
// compiler's #qkernel.launch verifier and the runtime's parser both enforce.
// The writer (lib/Target/Common/Manifest.cpp, writeLaunch) and the runtime's
// parser (runtime/src/artifact.cpp, Reader::launch) name fields only through
// these constants, and unittests/Target/launch_roundtrip_test.cpp writes
// every variant of the attribute and reads it back with the runtime. Header
// only, without MLIR, LLVM or a JSON library.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_LAUNCH_SCHEMA_H
#define QWEN_RT_LAUNCH_SCHEMA_H

#include <cstdint>
#include <string_view>

namespace qwen::launch_schema {

// A program entry (and each variant object) of a generated kernel:
//   "kernel": string                 the kernel's symbol (variants only; an
//                                    entry names its kernel anyway)
//   "grid": [symbol | integer, ...]  factors multiplied to the work items
//   "block": integer                 CUDA: threads per block
//   "shared_bytes": integer          CUDA: static shared memory
//   "decode": variant                CUDA, optional: decode-only steps, with
//     "splits": {"max": integer, "partial_floats": integer,
//                "combine": variant (required when max > 1),
//                "min_keys": integer (required when max > 1: the fewest
//                context positions the runtime gives one split)}
// and the target's "programmatic_launch": bool (every generated launch waits
// for the grids before it).
inline constexpr std::string_view kKernel = "kernel";
inline constexpr std::string_view kGrid = "grid";
inline constexpr std::string_view kBlock = "block";
inline constexpr std::string_view kSharedBytes = "shared_bytes";
inline constexpr std::string_view kDecode = "decode";
inline constexpr std::string_view kSplits = "splits";
inline constexpr std::string_view kMaxSplits = "max";
inline constexpr std::string_view kPartialFloats = "partial_floats";
inline constexpr std::string_view kCombine = "combine";
inline constexpr std::string_view kSplitKeys = "min_keys";
inline constexpr std::string_view kProgrammaticLaunch = "programmatic_launch";
/// target (cpu): the dtype the GEMMs' f32 activations are rounded to, "f32"
/// (none) or "bf16" (qwen-compile --bf16-activations=auto|round).
inline constexpr std::string_view kGemmActivations = "gemm_activations";

/// Grid symbols, in the order kernels receive the step sizes (T, B, P, R).
inline constexpr std::string_view kGridSymbols[] = {"T", "B", "P", "R"};

/// Threads of one block (every CUDA GPU).
inline constexpr int64_t kMaxBlockThreads = 1024;
/// Static shared memory of one block (sm_90 and every earlier GPU); more
/// needs dynamic shared memory, which the launch contract does not have.
inline constexpr int64_t kMaxStaticSharedBytes = 48 * 1024;

/// Index of `name` in kGridSymbols, or -1.
constexpr int gridSymbol(std::string_view name) {
  for (int i = 0; i < 4; ++i)
    if (kGridSymbols[i] == name)
      return i;
  return -1;
}

} // namespace qwen::launch_schema

#endif // QWEN_RT_LAUNCH_SCHEMA_H
