//===- CpuTarget.h - Which x86 CPU the kernels are compiled for -*- C++ -*-===//
//
// qwen-compile --cpu names the machine the kernels run on: `native` (the
// default, as llama.cpp builds: the host's CPU name and the features LLVM's
// host detection reports), `portable` (x86-64-v3: AVX2 + FMA + F16C, any
// x86 CPU since 2015) or any LLVM CPU name. The resolved target drives both
// the kernel codegen (vector width, dot-product instructions) and the object
// emission, and its ISA extensions go into the manifest for the runtime check.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_TARGET_CPU_CPUTARGET_H
#define QWEN_TARGET_CPU_CPUTARGET_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace qwen::target {

struct CpuTarget {
  /// LLVM CPU name ("znver4", "x86-64-v3", ...).
  std::string cpu;
  /// LLVM feature string for the target machine ("+avx512bf16,-amx-tile,...");
  /// empty: the CPU name's defaults.
  std::string featureString;
  /// The ISA extensions the target enables among the ones the runtime can
  /// check (qwen_rt/cpu_features.h), in that list's order.
  std::vector<std::string> isaFeatures;

  bool has(llvm::StringRef feature) const;
  /// f32 lanes of the widest vectors worth using: 16 with AVX-512, else 8.
  int64_t preferredVectorWidth() const;
};

/// The LLVM CPU name `portable` stands for.
inline constexpr const char *kPortableCpu = "x86-64-v3";

/// Resolves `native`, `portable` or an LLVM CPU name for the default target
/// triple; an error names the unknown CPU.
llvm::Expected<CpuTarget> resolveCpuTarget(llvm::StringRef request);

} // namespace qwen::target

#endif // QWEN_TARGET_CPU_CPUTARGET_H
