//===- cpu_features_test.cpp - Host ISA detection and its test override ---===//

#include "qwen_rt/cpu_features.h"
#include "qwen_rt/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace qwen::rt;

namespace {

/// Sets QWEN_CPU_FEATURES for one test and restores it afterwards.
class ForcedFeatures {
public:
  explicit ForcedFeatures(const char *value) {
    if (const char *old = std::getenv("QWEN_CPU_FEATURES"))
      saved = old;
    setenv("QWEN_CPU_FEATURES", value, 1);
  }
  ~ForcedFeatures() {
    if (saved)
      setenv("QWEN_CPU_FEATURES", saved->c_str(), 1);
    else
      unsetenv("QWEN_CPU_FEATURES");
  }

private:
  std::optional<std::string> saved;
};

bool contains(const std::vector<std::string> &list, const std::string &name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

TEST(CpuFeatures, DetectionIsConsistent) {
  if (std::getenv("QWEN_CPU_FEATURES"))
    GTEST_SKIP() << "QWEN_CPU_FEATURES overrides the detection";
  std::vector<std::string> host = hostCpuFeatures();
  for (const std::string &f : host)
    EXPECT_TRUE(isCheckableCpuFeature(f)) << f;
  // Extensions imply the ones they build on (and their OS register state).
  if (contains(host, "avx2"))
    EXPECT_TRUE(contains(host, "avx"));
  if (contains(host, "avx512bf16"))
    EXPECT_TRUE(contains(host, "avx512f"));
#if defined(__x86_64__)
  // This runtime is built for x86-64: SSE4.2 hosts are the least we run on.
  EXPECT_TRUE(hostHasCpuFeature("sse4.2"));
#endif
}

TEST(CpuFeatures, OverrideReplacesTheHost) {
  ForcedFeatures forced("avx,+avx2,fma");
  EXPECT_EQ(hostCpuFeatures(), (std::vector<std::string>{"avx", "avx2", "fma"}));
  EXPECT_TRUE(hostHasCpuFeature("avx2"));
  EXPECT_TRUE(hostHasCpuFeature("+fma"));
  EXPECT_FALSE(hostHasCpuFeature("f16c"));
  EXPECT_FALSE(hostHasCpuFeature("avx512bf16"));
  EXPECT_EQ(missingCpuFeatures({"avx2", "+avx512f", "avx512bf16"}),
            (std::vector<std::string>{"avx512f", "avx512bf16"}));
  EXPECT_TRUE(missingCpuFeatures({"avx", "fma"}).empty());
}

TEST(CpuFeatures, UnknownFeatureIsAnError) {
  EXPECT_FALSE(isCheckableCpuFeature("avx9000"));
  try {
    hostHasCpuFeature("avx9000");
    FAIL() << "no error for an unknown feature";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("target feature \"avx9000\" is unknown"), std::string::npos);
  }
}

} // namespace
