//===- cpu_features.h - Which ISA extensions the host CPU has ---*- C++ -*-===//
//
// A CPU artifact lists, in LLVM's spelling, the x86 ISA extensions its
// kernels.so may use (manifest target.features); the runtime refuses to load
// it on a CPU that lacks one. Detection reads cpuid and xgetbv directly (no
// LLVM in the runtime). QWEN_CPU_FEATURES="avx2,fma,..." replaces the detected
// set, so tests can play a CPU this machine is not.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CPU_FEATURES_H
#define QWEN_RT_CPU_FEATURES_H

#include <string>
#include <vector>

namespace qwen::rt {

/// The ISA extensions the runtime can check, in LLVM feature spelling. The
/// compiler records the ones its target enables from this same list.
inline constexpr const char *kCheckableCpuFeatures[] = {
    "sse4.1",     "sse4.2",     "popcnt",       "avx",          "avx2",
    "fma",        "f16c",       "bmi",          "bmi2",         "lzcnt",
    "movbe",      "avx512f",    "avx512bw",     "avx512dq",     "avx512vl",
    "avx512cd",   "avx512vnni", "avx512bf16",   "avx512ifma",   "avx512vbmi",
    "avx512vbmi2", "avx512bitalg", "avx512vpopcntdq", "avx512fp16", "avxvnni",
    "gfni",       "vaes",       "vpclmulqdq",   "amx-tile",     "amx-bf16",
    "amx-int8"};

/// True for a name of kCheckableCpuFeatures (a leading '+' is ignored).
bool isCheckableCpuFeature(const std::string &feature);

/// The host's features among kCheckableCpuFeatures, or the comma-separated
/// list of QWEN_CPU_FEATURES when that is set.
std::vector<std::string> hostCpuFeatures();

/// Whether the host CPU (or QWEN_CPU_FEATURES) has `feature` ("avx2", "fma",
/// "avx512bf16", ...). Throws Error for a feature name this runtime cannot check.
bool hostHasCpuFeature(const std::string &feature);

/// The features of `required` the host lacks (empty: the artifact can run).
std::vector<std::string> missingCpuFeatures(const std::vector<std::string> &required);

} // namespace qwen::rt

#endif // QWEN_RT_CPU_FEATURES_H
