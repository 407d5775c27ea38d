//===- cpu_features.cpp - Host ISA extensions from cpuid ------------------===//
#include "qwen_rt/cpu_features.h"
#include "qwen_rt/error.h"

#include <cstdint>
#include <cstdlib>
#include <set>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qwen::rt {
namespace {

std::string stripPlus(const std::string &feature) {
  return !feature.empty() && feature[0] == '+' ? feature.substr(1) : feature;
}

#if defined(__x86_64__) || defined(__i386__)
struct CpuidRegs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.a, &r.b, &r.c, &r.d))
    return CpuidRegs{};
  return r;
}

/// XCR0: which register states the OS saves (an extension is usable only
/// when the CPU has it and the OS enabled its registers).
uint64_t xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

std::set<std::string> detect() {
  std::set<std::string> found;
  unsigned maxLeaf = __get_cpuid_max(0, nullptr);
  if (maxLeaf < 1)
    return found;
  CpuidRegs l1 = cpuid(1, 0);
  auto bit = [](unsigned reg, int n) { return (reg >> n) & 1u; };
  const bool osxsave = bit(l1.c, 27);
  const uint64_t xcr = osxsave ? xcr0() : 0;
  const bool avxState = (xcr & 0x6) == 0x6;            // XMM, YMM
  const bool avx512State = avxState && (xcr & 0xe0) == 0xe0; // opmask, ZMM
  const bool amxState = (xcr & 0x60000) == 0x60000;    // TILECFG, TILEDATA
  auto add = [&](bool has, const char *name) {
    if (has)
      found.insert(name);
  };
  add(bit(l1.c, 19), "sse4.1");
  add(bit(l1.c, 20), "sse4.2");
  add(bit(l1.c, 23), "popcnt");
  add(bit(l1.c, 22), "movbe");
  add(avxState && bit(l1.c, 28), "avx");
  add(avxState && bit(l1.c, 12), "fma");
  add(avxState && bit(l1.c, 29), "f16c");
  if (maxLeaf >= 7) {
    CpuidRegs l7 = cpuid(7, 0);
    CpuidRegs l71 = cpuid(7, 1);
    add(bit(l7.b, 3), "bmi");
    add(bit(l7.b, 8), "bmi2");
    add(avxState && bit(l7.b, 5), "avx2");
    add(avxState && bit(l71.a, 4), "avxvnni");
    add(avxState && bit(l7.c, 8), "gfni");
    add(avxState && bit(l7.c, 9), "vaes");
    add(avxState && bit(l7.c, 10), "vpclmulqdq");
    if (avx512State) {
      add(bit(l7.b, 16), "avx512f");
      add(bit(l7.b, 17), "avx512dq");
      add(bit(l7.b, 21), "avx512ifma");
      add(bit(l7.b, 28), "avx512cd");
      add(bit(l7.b, 30), "avx512bw");
      add(bit(l7.b, 31), "avx512vl");
      add(bit(l7.c, 1), "avx512vbmi");
      add(bit(l7.c, 6), "avx512vbmi2");
      add(bit(l7.c, 11), "avx512vnni");
      add(bit(l7.c, 12), "avx512bitalg");
      add(bit(l7.c, 14), "avx512vpopcntdq");
      add(bit(l7.d, 23), "avx512fp16");
      add(bit(l71.a, 5), "avx512bf16");
    }
    if (amxState) {
      add(bit(l7.d, 24), "amx-tile");
      add(bit(l7.d, 22), "amx-bf16");
      add(bit(l7.d, 25), "amx-int8");
    }
  }
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000001u)
    add(bit(cpuid(0x80000001u, 0).c, 5), "lzcnt");
  return found;
}
#else
std::set<std::string> detect() { return {}; }
#endif

std::set<std::string> currentFeatures() {
  if (const char *forced = std::getenv("QWEN_CPU_FEATURES")) {
    std::set<std::string> listed;
    std::string text = forced;
    size_t start = 0;
    while (start <= text.size()) {
      size_t comma = text.find(',', start);
      std::string name = stripPlus(text.substr(start, comma - start));
      if (!name.empty())
        listed.insert(name);
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    return listed;
  }
  static const std::set<std::string> detected = detect();
  return detected;
}

} // namespace

bool isCheckableCpuFeature(const std::string &feature) {
  std::string name = stripPlus(feature);
  for (const char *known : kCheckableCpuFeatures)
    if (name == known)
      return true;
  return false;
}

std::vector<std::string> hostCpuFeatures() {
  std::set<std::string> features = currentFeatures();
  std::vector<std::string> ordered;
  for (const char *known : kCheckableCpuFeatures)
    if (features.count(known))
      ordered.push_back(known);
  return ordered;
}

bool hostHasCpuFeature(const std::string &feature) {
  if (!isCheckableCpuFeature(feature))
    throw Error("target feature \"" + feature +
                "\" is unknown to this runtime, so it cannot check the host CPU for it");
  return currentFeatures().count(stripPlus(feature)) != 0;
}

std::vector<std::string> missingCpuFeatures(const std::vector<std::string> &required) {
  std::vector<std::string> missing;
  for (const std::string &feature : required)
    if (!hostHasCpuFeature(feature))
      missing.push_back(stripPlus(feature));
  return missing;
}

} // namespace qwen::rt
