//===- launch_schema_test.cpp - #qkernel.launch, written and read back ------===//
//
// The compiler writes a kernel's launch into the manifest with one function
// (lib/Target/Common/Manifest.cpp, writeLaunch / variantJson) and the runtime
// reads it with one parser (runtime/src/artifact.cpp); both spell the fields
// through include/qwen_rt/launch_schema.h. This test writes every form of
// the attribute (CPU grid, GPU kernel, programmatic, decode variant with one
// split and with a combine kernel, the sampler's variants) and reads each
// back with the runtime's parser, so that a field added on one side only,
// or spelled differently, fails here.
//
//===----------------------------------------------------------------------===//
#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Target/Common/Manifest.h"
#include "qwen_rt/artifact.h"
#include "qwen_rt/error.h"
#include "qwen_rt/launch_schema.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FormatVariadic.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

using namespace mlir;
using namespace qwen;
namespace schema = qwen::launch_schema;

namespace {

class LaunchSchemaTest : public ::testing::Test {
protected:
  LaunchSchemaTest() { context.loadDialect<qkernel::QKernelDialect>(); }

  template <typename AttrT> AttrT parse(const std::string &text) {
    auto attr = dyn_cast_or_null<AttrT>(parseAttribute(text, &context));
    EXPECT_TRUE(attr) << text;
    return attr;
  }

  MLIRContext context;
};

std::string text(llvm::json::Object object) {
  return llvm::formatv("{0}", llvm::json::Value(std::move(object))).str();
}

/// Every key of the written JSON (recursively) is one of the schema's.
void expectSchemaKeys(const llvm::json::Object &object) {
  static const std::set<std::string> known = {
      std::string(schema::kKernel),    std::string(schema::kGrid),
      std::string(schema::kBlock),     std::string(schema::kSharedBytes),
      std::string(schema::kDecode),    std::string(schema::kSplits),
      std::string(schema::kMaxSplits), std::string(schema::kPartialFloats),
      std::string(schema::kCombine),   std::string(schema::kSplitKeys)};
  for (const auto &field : object) {
    EXPECT_TRUE(known.count(field.first.str())) << "field \"" << field.first.str()
                                                << "\" is not in launch_schema.h";
    if (const llvm::json::Object *nested = field.second.getAsObject())
      expectSchemaKeys(*nested);
  }
}

/// The runtime's grid equals the attribute's factors.
void expectGrid(mlir::ArrayAttr grid, const rt::SymShape &shape) {
  ASSERT_EQ(grid.size(), shape.size());
  for (auto [factor, dim] : llvm::zip(grid, shape)) {
    if (auto symbol = dyn_cast<StringAttr>(factor)) {
      EXPECT_EQ(dim.symbol, schema::gridSymbol(symbol.getValue().str()));
    } else {
      EXPECT_EQ(dim.symbol, -1);
      EXPECT_EQ(dim.value, cast<IntegerAttr>(factor).getInt());
    }
  }
}

void expectVariant(qkernel::KernelVariantAttr variant, const rt::ProgramEntry::Launchable &read) {
  ASSERT_TRUE(variant);
  EXPECT_EQ(read.kernel, variant.getKernel().str());
  expectGrid(variant.getGrid(), read.grid);
  EXPECT_EQ(read.blockThreads, variant.getBlock());
  EXPECT_EQ(read.sharedBytes, variant.getShared());
}

/// Writes `attr` as a program entry and reads it back as the runtime does.
void roundTrip(qkernel::LaunchAttr attr) {
  ASSERT_TRUE(attr);
  llvm::json::Object entry;
  target::writeLaunch(attr, entry);
  expectSchemaKeys(entry);
  rt::ProgramEntry read = rt::parseLaunch(text(std::move(entry)), /*cuda=*/attr.isGpu());
  expectGrid(attr.getGrid(), read.grid);
  EXPECT_EQ(read.blockThreads, attr.getBlock());
  EXPECT_EQ(read.sharedBytes, attr.getShared());
  if (!attr.getDecode()) {
    EXPECT_TRUE(read.decode.kernel.empty());
    return;
  }
  expectVariant(attr.getDecode(), read.decode);
  EXPECT_EQ(read.decode.maxSplits, attr.getMaxSplits());
  EXPECT_EQ(read.decode.partialFloats, attr.getPartialFloats());
  EXPECT_EQ(read.decode.splitKeys, attr.getSplitKeys());
  if (attr.getCombine())
    expectVariant(attr.getCombine(), read.decode.combine);
  else
    EXPECT_TRUE(read.decode.combine.kernel.empty());
}

TEST_F(LaunchSchemaTest, CpuGrid) {
  roundTrip(parse<qkernel::LaunchAttr>("#qkernel.launch<grid = [T, 4]>"));
  roundTrip(parse<qkernel::LaunchAttr>("#qkernel.launch<grid = [T, B, P, R, 7]>"));
}

TEST_F(LaunchSchemaTest, GpuKernel) {
  roundTrip(parse<qkernel::LaunchAttr>("#qkernel.launch<grid = [B, 8], block = 256, shared = 0>"));
  // The limits both sides enforce, at their edges.
  roundTrip(parse<qkernel::LaunchAttr>(
      "#qkernel.launch<grid = [8], block = 1024, shared = 49152, programmatic>"));
  roundTrip(parse<qkernel::LaunchAttr>("#qkernel.launch<grid = [R], block = 1, shared = 0>"));
}

TEST_F(LaunchSchemaTest, DecodeVariantWithOneSplit) {
  roundTrip(parse<qkernel::LaunchAttr>(
      "#qkernel.launch<grid = [T, 4], block = 256, shared = 1056, decode = <\"k_decode\", "
      "grid = [B, 4], block = 128, shared = 64>, max_splits = 1, partial_floats = 8>"));
}

TEST_F(LaunchSchemaTest, DecodeVariantWithCombine) {
  roundTrip(parse<qkernel::LaunchAttr>(
      "#qkernel.launch<grid = [T, 4], block = 256, shared = 37440, decode = <\"k_decode\", "
      "grid = [T, 1], block = 128, shared = 33792>, max_splits = 32, partial_floats = 528, "
      "combine = <\"k_decode_combine\", grid = [T, 4], block = 128, shared = 0>, split_keys = 64, "
      "programmatic>"));
}

TEST_F(LaunchSchemaTest, SamplerVariant) {
  auto variant = parse<qkernel::KernelVariantAttr>(
      "#qkernel.variant<\"qk_topk\", grid = [R], block = 1024, shared = 4228>");
  ASSERT_TRUE(variant);
  llvm::json::Object object = target::variantJson(variant);
  expectSchemaKeys(object);
  expectVariant(variant, rt::parseLaunchable(text(std::move(object))));
}

/// What the verifier refuses, the runtime refuses too (the same limits).
TEST_F(LaunchSchemaTest, RuntimeRefusesWhatTheVerifierRefuses) {
  auto refused = [](const std::string &json) {
    try {
      rt::parseLaunch(json, /*cuda=*/true);
    } catch (const rt::Error &) {
      return true;
    }
    return false;
  };
  EXPECT_TRUE(refused(R"({"grid": ["T"], "block": 1025, "shared_bytes": 0})"));
  EXPECT_TRUE(refused(R"({"grid": ["T"], "block": 32, "shared_bytes": 49153})"));
  EXPECT_TRUE(refused(R"({"grid": ["N"], "block": 32, "shared_bytes": 0})"));
  EXPECT_TRUE(refused(R"({"grid": [], "block": 32, "shared_bytes": 0})"));
  EXPECT_TRUE(refused(R"({"grid": ["T"], "block": 32, "shared_bytes": 0, "decode": {"kernel": "d",
      "grid": ["B"], "block": 32, "shared_bytes": 0, "splits": {"max": 4, "partial_floats": 8}}})"));
  // Splits without their fewest keys (the verifier's "needs split_keys").
  EXPECT_TRUE(refused(R"({"grid": ["T"], "block": 32, "shared_bytes": 0, "decode": {"kernel": "d",
      "grid": ["B"], "block": 32, "shared_bytes": 0, "splits": {"max": 4, "partial_floats": 8,
      "combine": {"kernel": "c", "grid": ["B"], "block": 32, "shared_bytes": 0}}}})"));
  EXPECT_FALSE(refused(R"({"grid": ["T"], "block": 32, "shared_bytes": 0, "decode": {"kernel": "d",
      "grid": ["B"], "block": 32, "shared_bytes": 0, "splits": {"max": 1, "partial_floats": 8}}})"));
}

} // namespace
