//===- safetensors_test.cpp - Tests of the safetensors reader/writer ------===//

#include "qwen_rt/dtype.h"
#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace qwen::rt;

namespace {

/// A fresh temporary folder, removed at the end of the test.
class TempDir {
public:
  TempDir() {
    static int Counter = 0;
    Path = fs::temp_directory_path() /
           ("qwen_st_test_" + std::to_string(::getpid()) + "_" + std::to_string(Counter++));
    fs::remove_all(Path);
    fs::create_directories(Path);
  }
  ~TempDir() {
    std::error_code EC;
    fs::remove_all(Path, EC);
  }
  std::string file(const std::string &Name) const { return (Path / Name).string(); }
  std::string str() const { return Path.string(); }

private:
  fs::path Path;
};

void writeBytes(const std::string &Path, const std::string &Bytes) {
  std::ofstream Out(Path, std::ios::binary);
  Out.write(Bytes.data(), static_cast<std::streamsize>(Bytes.size()));
}

std::string readBytes(const std::string &Path) {
  std::ifstream In(Path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(In), {});
}

std::string le64(uint64_t V) {
  std::string S(8, '\0');
  for (int I = 0; I < 8; ++I)
    S[I] = static_cast<char>(V >> (8 * I));
  return S;
}

/// A hand-made file: header length, header, data.
std::string rawFile(const std::string &Header, size_t DataBytes) {
  return le64(Header.size()) + Header + std::string(DataBytes, '\x01');
}

/// The message of the Error thrown by F; fails the test if nothing is thrown.
template <typename Fn> std::string errorOf(Fn F) {
  try {
    F();
  } catch (const Error &E) {
    return E.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

#define EXPECT_CONTAINS(Haystack, Needle)                                                          \
  EXPECT_NE(std::string(Haystack).find(Needle), std::string::npos)                                 \
      << "'" << (Haystack) << "' does not contain '" << (Needle) << "'"

TEST(SafetensorsTest, RoundTripDTypes) {
  TempDir Dir;
  std::vector<float> F32 = {1.f, -2.5f, 3.25f, 0.f, 0.125f, 7.f}; // exact in bf16
  std::vector<uint16_t> Bf16, F16;
  for (float V : F32) {
    Bf16.push_back(f32ToBf16(V));
    F16.push_back(f32ToF16(V));
  }
  std::vector<int32_t> I32 = {1, -2, 2147483647, -2147483647 - 1};
  std::vector<int64_t> I64 = {int64_t(1) << 40};
  uint8_t Flag = 1;
  std::string Path = Dir.file("t.safetensors");
  writeSafetensors(Path,
                   {{"a.f32", DType::F32, {2, 3}, F32.data()},
                    {"b.bf16", DType::BF16, {3, 2}, Bf16.data()},
                    {"c.f16", DType::F16, {6}, F16.data()},
                    {"d.i32", DType::I32, {4}, I32.data()},
                    {"e.i64", DType::I64, {1, 1}, I64.data()},
                    {"f.bool", DType::Bool, {}, &Flag},
                    {"g.empty", DType::F32, {0, 4}, nullptr}},
                   {{"format", "pt"}});

  // The data section starts 8-byte aligned.
  std::string Bytes = readBytes(Path);
  uint64_t HeaderLen;
  std::memcpy(&HeaderLen, Bytes.data(), 8);
  EXPECT_EQ((8 + HeaderLen) % 8, 0u);
  auto Header = nlohmann::json::parse(Bytes.substr(8, HeaderLen));
  EXPECT_EQ(Header["__metadata__"]["format"], "pt");
  EXPECT_EQ(Header["b.bf16"]["dtype"], "BF16");

  SafetensorsArchive A = SafetensorsArchive::openFile(Path);
  EXPECT_EQ(A.names(), (std::vector<std::string>{"a.f32", "b.bf16", "c.f16", "d.i32", "e.i64",
                                                 "f.bool", "g.empty"}));
  const TensorView &TA = A.get("a.f32");
  EXPECT_EQ(TA.dtype, DType::F32);
  EXPECT_EQ(TA.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(TA.numel(), 6);
  EXPECT_EQ(TA.nbytes, 24u);
  EXPECT_EQ(TA.file, Path);
  EXPECT_EQ(std::memcmp(TA.data, F32.data(), 24), 0);

  const TensorView &TB = A.get("b.bf16");
  EXPECT_EQ(TB.dtype, DType::BF16);
  EXPECT_EQ(TB.shape, (std::vector<int64_t>{3, 2}));
  std::vector<float> Back(6);
  convertFloats(TB.dtype, TB.data, DType::F32, Back.data(), 6);
  EXPECT_EQ(Back, F32); // all values exact in bf16

  const TensorView &TC = A.get("c.f16");
  EXPECT_EQ(TC.dtype, DType::F16);
  convertFloats(TC.dtype, TC.data, DType::F32, Back.data(), 6);
  for (size_t I = 0; I < 6; ++I)
    EXPECT_EQ(Back[I], f16ToF32(F16[I]));

  const TensorView &TD = A.get("d.i32");
  EXPECT_EQ(TD.dtype, DType::I32);
  EXPECT_EQ(std::memcmp(TD.data, I32.data(), 16), 0);
  EXPECT_EQ(A.get("e.i64").dtype, DType::I64);
  const TensorView &TF = A.get("f.bool");
  EXPECT_EQ(TF.dtype, DType::Bool);
  EXPECT_TRUE(TF.shape.empty());
  EXPECT_EQ(TF.numel(), 1);
  EXPECT_EQ(TF.data[0], 1);
  EXPECT_EQ(A.get("g.empty").numel(), 0);
  EXPECT_EQ(A.get("g.empty").nbytes, 0u);

  EXPECT_EQ(A.find("nope"), nullptr);
  std::string Msg = errorOf([&] { A.get("nope"); });
  EXPECT_EQ(Msg, "checkpoint " + Path + " has no tensor 'nope'");

  ASSERT_EQ(A.files().size(), 1u);
  EXPECT_EQ(A.files()[0].name, "t.safetensors");
  EXPECT_EQ(A.files()[0].size, Bytes.size());
  SafetensorsFileInfo Probe = probeSafetensorsFile(Path);
  EXPECT_EQ(Probe.name, "t.safetensors");
  EXPECT_EQ(Probe.size, Bytes.size());
  EXPECT_EQ(Probe.headerHash, A.files()[0].headerHash);
}

TEST(SafetensorsTest, ArchiveIsMovable) {
  TempDir Dir;
  float V[2] = {1.f, 2.f};
  std::string Path = Dir.file("m.safetensors");
  writeSafetensors(Path, {{"x", DType::F32, {2}, V}});
  SafetensorsArchive A = SafetensorsArchive::openFile(Path);
  const TensorView *X = A.find("x");
  SafetensorsArchive B = std::move(A);
  EXPECT_EQ(B.find("x"), X); // views stay where they were
  EXPECT_EQ(reinterpret_cast<const float *>(B.get("x").data)[1], 2.f);
  SafetensorsArchive C = SafetensorsArchive::openFile(Path);
  C = std::move(B);
  EXPECT_EQ(reinterpret_cast<const float *>(C.get("x").data)[0], 1.f);
}

TEST(SafetensorsTest, HeaderHashIsFnv1aOfHeaderBytes) {
  TempDir Dir;
  std::string Header = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string Path = Dir.file("h.safetensors");
  writeBytes(Path, rawFile(Header, 4));
  uint64_t H = 0xcbf29ce484222325ull;
  for (unsigned char C : Header) {
    H ^= C;
    H *= 0x100000001b3ull;
  }
  EXPECT_EQ(probeSafetensorsFile(Path).headerHash, H);
  EXPECT_EQ(SafetensorsArchive::openFile(Path).files()[0].headerHash, H);
  // Changing the header changes the hash.
  std::string Header2 = R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  writeBytes(Path, rawFile(Header2, 4));
  EXPECT_NE(probeSafetensorsFile(Path).headerHash, H);
}

TEST(SafetensorsTest, CorruptFiles) {
  TempDir Dir;
  std::string P = Dir.file("bad.safetensors");
  auto Open = [&] { SafetensorsArchive::openFile(P); };
  auto Probe = [&] { probeSafetensorsFile(P); };

  // Missing file.
  EXPECT_CONTAINS(errorOf(Open), "cannot open safetensors file " + P);
  EXPECT_CONTAINS(errorOf(Probe), P);

  // Too small.
  writeBytes(P, "abc");
  EXPECT_CONTAINS(errorOf(Open), "too small");
  EXPECT_CONTAINS(errorOf(Probe), "too small");
  writeBytes(P, "");
  EXPECT_CONTAINS(errorOf(Open), "too small");

  // Header length larger than the file.
  writeBytes(P, le64(1000) + "{}");
  EXPECT_CONTAINS(errorOf(Open), "header length of 1000");
  EXPECT_CONTAINS(errorOf(Probe), "header length of 1000");
  // Absurd header length.
  writeBytes(P, le64(uint64_t(1) << 40) + "{}");
  EXPECT_CONTAINS(errorOf(Open), "absurd header length");
  EXPECT_CONTAINS(errorOf(Probe), "absurd header length");

  // Malformed JSON.
  writeBytes(P, rawFile(R"({"x": {"dtype": "F32", )", 0));
  std::string Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "JSON header of safetensors file");
  EXPECT_CONTAINS(Msg, "malformed JSON");
  EXPECT_CONTAINS(Msg, P);
  writeBytes(P, rawFile("[1, 2]", 0));
  EXPECT_CONTAINS(errorOf(Open), "not an object");

  // Unknown dtype (float8_e4m3fn is read: FP8 checkpoints; e5m2 is not).
  writeBytes(P, rawFile(R"({"w":{"dtype":"F8_E5M2","shape":[4],"data_offsets":[0,4]}})", 4));
  Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "unknown dtype 'F8_E5M2'");
  EXPECT_CONTAINS(Msg, "tensor 'w'");

  // Truncated: the data section is shorter than the offsets say.
  writeBytes(P, rawFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 10));
  Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "truncated");
  EXPECT_CONTAINS(Msg, "tensor 'w'");
  EXPECT_CONTAINS(Msg, P);
  {
    std::string Header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    uint64_t Expected = 8 + Header.size() + 16, Actual = 8 + Header.size() + 10;
    EXPECT_CONTAINS(Msg, "at least " + std::to_string(Expected) + " bytes");
    EXPECT_CONTAINS(Msg, "it has " + std::to_string(Actual));
  }

  // Truncate a real written file.
  {
    std::vector<float> Data(100, 1.f);
    std::string Good = Dir.file("good.safetensors");
    writeSafetensors(Good, {{"big", DType::F32, {10, 10}, Data.data()}});
    std::string Bytes = readBytes(Good);
    writeBytes(P, Bytes.substr(0, Bytes.size() - 1));
    Msg = errorOf(Open);
    EXPECT_CONTAINS(Msg, "truncated");
    EXPECT_CONTAINS(Msg, "'big'");
  }

  // end < begin.
  writeBytes(P, rawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 16));
  EXPECT_CONTAINS(errorOf(Open), "end is before its begin");

  // nbytes != numel * dtypeSize.
  writeBytes(P, rawFile(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}})", 16));
  Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "mis-shaped");
  EXPECT_CONTAINS(Msg, "[2, 3]");
  EXPECT_CONTAINS(Msg, "12");
  EXPECT_CONTAINS(Msg, "8 bytes");

  // Bad shape and offsets types.
  writeBytes(P, rawFile(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4));
  EXPECT_CONTAINS(errorOf(Open), "shape entry");
  writeBytes(P, rawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4));
  EXPECT_CONTAINS(errorOf(Open), "data_offsets");
  writeBytes(P, rawFile(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4));
  EXPECT_CONTAINS(errorOf(Open), "dtype");
  writeBytes(P, rawFile(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4));
  EXPECT_CONTAINS(errorOf(Open), "shape");
  writeBytes(P, rawFile(R"({"w":[1]})", 4));
  EXPECT_CONTAINS(errorOf(Open), "not an object");
  // Overflowing shape.
  writeBytes(
      P,
      rawFile(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4));
  EXPECT_CONTAINS(errorOf(Open), "mis-shaped");
}

TEST(SafetensorsTest, MetadataIsAcceptedOverlapIsNot) {
  TempDir Dir;
  std::string P = Dir.file("o.safetensors");
  writeBytes(P, rawFile(R"({"__metadata__":{"format":"pt"},)"
                        R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                        R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                        4));
  SafetensorsArchive A = SafetensorsArchive::openFile(P);
  EXPECT_EQ(A.names().size(), 2u);
  EXPECT_EQ(A.get("b").data, A.get("a").data + 2);

  // Two tensors sharing bytes: a corrupt or crafted file.
  writeBytes(P, rawFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                        4));
  EXPECT_CONTAINS(errorOf([&] { SafetensorsArchive::openFile(P); }),
                  "the data of tensor 'a' [0, 4) overlaps that of tensor 'b' [2, 4)");
}

void writeShard(const std::string &Path, const std::vector<std::string> &Names, float Base) {
  std::vector<std::vector<float>> Data;
  std::vector<TensorToWrite> Ts;
  for (size_t I = 0; I < Names.size(); ++I)
    Data.push_back({Base + I, Base + I + 0.5f});
  for (size_t I = 0; I < Names.size(); ++I)
    Ts.push_back({Names[I], DType::F32, {2}, Data[I].data()});
  writeSafetensors(Path, Ts);
}

TEST(SafetensorsTest, ShardedCheckpoint) {
  TempDir Dir;
  writeShard(Dir.file("model-00001-of-00002.safetensors"), {"a", "b"}, 10);
  writeShard(Dir.file("model-00002-of-00002.safetensors"), {"c"}, 20);
  nlohmann::json Index = {{"metadata", {{"total_size", 24}}},
                          {"weight_map",
                           {{"a", "model-00001-of-00002.safetensors"},
                            {"b", "model-00001-of-00002.safetensors"},
                            {"c", "model-00002-of-00002.safetensors"}}}};
  writeBytes(Dir.file("model.safetensors.index.json"), Index.dump(2));
  // A stray file that the index does not mention is ignored.
  writeShard(Dir.file("other.safetensors"), {"z"}, 0);

  SafetensorsArchive A = SafetensorsArchive::openDir(Dir.str());
  EXPECT_EQ(A.names(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(A.files().size(), 2u);
  EXPECT_EQ(A.files()[0].name, "model-00001-of-00002.safetensors");
  EXPECT_EQ(A.files()[1].name, "model-00002-of-00002.safetensors");
  EXPECT_EQ(A.files()[1].headerHash,
            probeSafetensorsFile(Dir.file("model-00002-of-00002.safetensors")).headerHash);
  EXPECT_EQ(reinterpret_cast<const float *>(A.get("b").data)[1], 11.5f);
  EXPECT_EQ(reinterpret_cast<const float *>(A.get("c").data)[0], 20.f);
  EXPECT_EQ(A.get("c").file, Dir.file("model-00002-of-00002.safetensors"));
  EXPECT_EQ(errorOf([&] { A.get("z"); }), "checkpoint " + Dir.str() + " has no tensor 'z'");
}

TEST(SafetensorsTest, ShardedCheckpointErrors) {
  TempDir Dir;
  writeShard(Dir.file("s1.safetensors"), {"a"}, 1);
  std::string IndexPath = Dir.file("model.safetensors.index.json");
  auto Open = [&] { SafetensorsArchive::openDir(Dir.str()); };

  writeBytes(IndexPath, R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  std::string Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "s2.safetensors");
  EXPECT_CONTAINS(Msg, "does not exist");
  EXPECT_CONTAINS(Msg, "'b'");

  writeBytes(IndexPath, R"({"weight_map": {"a": "s1.safetensors", "q": "s1.safetensors"}})");
  Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "'q'");
  EXPECT_CONTAINS(Msg, "no such tensor");

  writeBytes(IndexPath, R"({"weight_map": {"a": )");
  Msg = errorOf(Open);
  EXPECT_CONTAINS(Msg, "malformed JSON");
  EXPECT_CONTAINS(Msg, IndexPath);

  writeBytes(IndexPath, R"({"metadata": {}})");
  EXPECT_CONTAINS(errorOf(Open), "weight_map");

  writeBytes(IndexPath, R"({"weight_map": {"a": 3}})");
  EXPECT_CONTAINS(errorOf(Open), "'a'");
}

TEST(SafetensorsTest, OpenDirChoices) {
  {
    TempDir Dir;
    EXPECT_CONTAINS(errorOf([&] { SafetensorsArchive::openDir(Dir.str()); }),
                    "no model.safetensors.index.json");
    writeShard(Dir.file("weights.safetensors"), {"only"}, 0);
    SafetensorsArchive A = SafetensorsArchive::openDir(Dir.str());
    EXPECT_NE(A.find("only"), nullptr);
    EXPECT_EQ(A.files()[0].name, "weights.safetensors");
    writeShard(Dir.file("more.safetensors"), {"more"}, 0);
    EXPECT_CONTAINS(errorOf([&] { SafetensorsArchive::openDir(Dir.str()); }),
                    "several *.safetensors");
    // model.safetensors wins over the others.
    writeShard(Dir.file("model.safetensors"), {"main"}, 0);
    SafetensorsArchive B = SafetensorsArchive::openDir(Dir.str());
    EXPECT_EQ(B.names(), std::vector<std::string>{"main"});
    EXPECT_EQ(errorOf([&] { B.get("x"); }), "checkpoint " + Dir.str() + " has no tensor 'x'");
  }
  EXPECT_CONTAINS(errorOf([] { SafetensorsArchive::openDir("/nonexistent/qwen/ckpt"); }),
                  "/nonexistent/qwen/ckpt");
}

TEST(SafetensorsTest, WriterRejectsBadInput) {
  TempDir Dir;
  float V = 1.f;
  EXPECT_THROW(writeSafetensors(Dir.file("a.safetensors"),
                                {{"x", DType::F32, {1}, &V}, {"x", DType::F32, {1}, &V}}),
               Error);
  EXPECT_THROW(writeSafetensors(Dir.file("b.safetensors"), {{"x", DType::F32, {-1}, &V}}), Error);
  EXPECT_THROW(writeSafetensors(Dir.file("c.safetensors"), {{"x", DType::F32, {1}, nullptr}}),
               Error);
  EXPECT_THROW(writeSafetensors("/nonexistent/dir/x.safetensors", {{"x", DType::F32, {1}, &V}}),
               Error);
}

TEST(SafetensorsTest, DemoCheckpoint) {
  std::string Dir = std::string(QWEN_SOURCE_DIR) + "/models/checkpoints/qwen3-demo";
  std::string File = Dir + "/model.safetensors";
  if (!fs::exists(File))
    GTEST_SKIP() << File << " is not present";
  SafetensorsArchive A = SafetensorsArchive::openDir(Dir);
  const TensorView &E = A.get("model.embed_tokens.weight");
  EXPECT_EQ(E.dtype, DType::BF16);
  EXPECT_EQ(E.shape, (std::vector<int64_t>{151936, 64}));
  EXPECT_EQ(E.nbytes, size_t(151936) * 64 * 2);
  EXPECT_EQ(E.file, (fs::path(Dir) / "model.safetensors").string());
  // Values are finite and not all zero.
  std::vector<float> Row(64);
  convertFloats(DType::BF16, E.data + 1000 * 64 * 2, DType::F32, Row.data(), 64);
  bool AnyNonZero = false;
  for (float V : Row) {
    EXPECT_TRUE(std::isfinite(V));
    AnyNonZero |= V != 0.f;
  }
  EXPECT_TRUE(AnyNonZero);
  EXPECT_NE(A.find("model.layers.1.self_attn.q_proj.weight"), nullptr);
  ASSERT_EQ(A.files().size(), 1u);
  EXPECT_EQ(A.files()[0].name, "model.safetensors");
  EXPECT_EQ(A.files()[0].size, fs::file_size(File));
  SafetensorsFileInfo Probe = probeSafetensorsFile(File);
  EXPECT_EQ(Probe.headerHash, A.files()[0].headerHash);
  EXPECT_EQ(Probe.size, A.files()[0].size);
}

} // namespace

//===----------------------------------------------------------------------===//
// Weight sources: row slices and flattened leading dimensions
//===----------------------------------------------------------------------===//

#include "qwen_rt/weights.h"

namespace {
std::string sourceError(const SafetensorsArchive &Archive, const WeightSpec &W) {
  try {
    resolveWeightSources(Archive, W, " (hint)");
  } catch (const Error &E) {
    return E.what();
  }
  return "<no error>";
}
} // namespace

TEST(WeightSourcesTest, RowSlicesAndFlattenedTensors) {
  TempDir Dir;
  std::vector<float> W(12), E(12), Conv(8);
  for (int I = 0; I < 12; ++I)
    W[size_t(I)] = float(I), E[size_t(I)] = float(100 + I);
  writeSafetensors(Dir.file("model.safetensors"), {{"w", DType::F32, {4, 3}, W.data()},
                                                    {"e", DType::F32, {2, 2, 3}, E.data()},
                                                    {"conv", DType::F32, {4, 1, 2}, Conv.data()}});
  SafetensorsArchive Archive = SafetensorsArchive::openDir(Dir.str());

  // Rows 1..2 of w, then the [2, 2, 3] tensor as 4 rows of 3.
  WeightSpec Stacked;
  Stacked.dtype = DType::F32;
  Stacked.shape = {6, 3};
  Stacked.sources = {"w[1:3]", "e"};
  std::vector<SourceView> Views = resolveWeightSources(Archive, Stacked, "");
  ASSERT_EQ(Views.size(), 2u);
  EXPECT_EQ(Views[0].numel, 6);
  EXPECT_EQ(reinterpret_cast<const float *>(Views[0].data)[0], 3.0f);
  EXPECT_EQ(Views[1].numel, 12);

  // A [4, 1, 2] conv weight binds to a [4, 2] weight.
  WeightSpec ConvWeight;
  ConvWeight.dtype = DType::F32;
  ConvWeight.shape = {4, 2};
  ConvWeight.sources = {"conv"};
  EXPECT_NO_THROW(resolveWeightSources(Archive, ConvWeight, ""));

  WeightSpec Bad = Stacked;
  Bad.sources = {"w[3:5]", "e"};
  EXPECT_NE(sourceError(Archive, Bad).find("selects rows outside tensor 'w' of shape [4, 3] (hint)"),
            std::string::npos);
  Bad.sources = {"w[2:1]"};
  EXPECT_NE(sourceError(Archive, Bad).find("is malformed"), std::string::npos);
  Bad.sources = {"w[a:2]"};
  EXPECT_NE(sourceError(Archive, Bad).find("is malformed"), std::string::npos);
  Bad.sources = {"w[0:1]", "w"};
  EXPECT_NE(sourceError(Archive, Bad).find("have 5 rows together, but [6, 3] is expected"), std::string::npos);
  Bad.sources = {"w[0:1]", "missing"};
  EXPECT_NE(sourceError(Archive, Bad).find("has no tensor 'missing'"), std::string::npos);
  Bad.shape = {6, 4};
  Bad.sources = {"w[0:2]", "e"};
  EXPECT_NE(sourceError(Archive, Bad).find("expects whole rows of [6, 4]"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Hostile files (issue 20)
//===----------------------------------------------------------------------===//

TEST(SafetensorsTest, IndexMayNotLeaveTheCheckpointFolder) {
  TempDir Dir;
  fs::create_directories(Dir.file("inner"));
  writeShard(Dir.file("inner/model.safetensors"), {"a"}, 1);
  writeShard(Dir.file("outside.safetensors"), {"b"}, 2);
  const std::string Inner = Dir.file("inner");
  const std::string Index = Inner + "/model.safetensors.index.json";
  for (const std::string &Shard : {std::string("../outside.safetensors"), Dir.file("outside.safetensors"),
                                   std::string("sub/../../outside.safetensors")}) {
    SCOPED_TRACE(Shard);
    writeBytes(Index, nlohmann::json{{"weight_map", {{"b", Shard}}}}.dump());
    std::string Msg = errorOf([&] { SafetensorsArchive::openDir(Inner); });
    EXPECT_CONTAINS(Msg, Index + ": weight_map entry for tensor 'b' names the file '" + Shard +
                             "', which is outside the checkpoint folder");
  }
  // Relative names inside the folder are fine.
  writeBytes(Index, nlohmann::json{{"weight_map", {{"a", "./model.safetensors"}}}}.dump());
  EXPECT_EQ(SafetensorsArchive::openDir(Inner).names(), std::vector<std::string>{"a"});
}

TEST(SafetensorsTest, HostileHeaders) {
  TempDir Dir;
  std::string P = Dir.file("h.safetensors");
  auto Open = [&] { SafetensorsArchive::openFile(P); };
  // Nesting deep enough to overflow a recursive parser's stack.
  writeBytes(P, rawFile("{\"__metadata__\": " + std::string(100000, '[') + std::string(100000, ']') + "}", 0));
  EXPECT_CONTAINS(errorOf(Open), "the JSON header of safetensors file " + P +
                                     ": JSON nested deeper than 64 levels");
  // A number out of double's range.
  writeBytes(P, rawFile(R"({"a":{"dtype":"U8","shape":[1e999],"data_offsets":[0,1]}})", 1));
  EXPECT_CONTAINS(errorOf(Open), P + ": malformed JSON");
  // A shape entry that is a nested value is quoted briefly.
  writeBytes(P, rawFile(R"({"a":{"dtype":"U8","shape":[[[[[[[[[[[[[[1,2,3,4,5,6,7,8,9]]]]]]]]]]]]]],)"
                        R"("data_offsets":[0,1]}})",
                        1));
  EXPECT_CONTAINS(errorOf(Open), "not a non-negative integer: [[[[");
  // Too many dimensions.
  writeBytes(P, rawFile(R"({"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}})", 1));
  EXPECT_CONTAINS(errorOf(Open), "tensor 'a' has 9 dimensions; at most 8 are supported");
}

TEST(SafetensorsTest, ParsesBytesInMemory) {
  std::string Bytes = rawFile(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2);
  std::vector<TensorView> Views =
      parseSafetensorsBytes(reinterpret_cast<const uint8_t *>(Bytes.data()), Bytes.size(), "mem");
  ASSERT_EQ(Views.size(), 1u);
  EXPECT_EQ(Views[0].nbytes, 2u);
  EXPECT_CONTAINS(errorOf([&] { parseSafetensorsBytes(reinterpret_cast<const uint8_t *>(Bytes.data()), 7, "mem"); }),
                  "safetensors file mem is too small");
}

TEST(SafetensorsTest, FindsNonFiniteValues) {
  std::vector<float> F32 = {1.f, std::numeric_limits<float>::quiet_NaN(), 2.f,
                            -std::numeric_limits<float>::infinity()};
  std::vector<uint16_t> Bf16 = {f32ToBf16(1.f), f32ToBf16(std::numeric_limits<float>::infinity())};
  std::vector<uint16_t> F16 = {f32ToF16(1.f), f32ToF16(65504.f), 0x7e00};
  std::vector<int32_t> I32 = {-1, -1}; // all exponent-like bits set, but not a float
  auto View = [](DType T, const void *Data, size_t Bytes) {
    TensorView V;
    V.dtype = T;
    V.data = static_cast<const uint8_t *>(Data);
    V.nbytes = Bytes;
    return V;
  };
  NonFiniteValues Found = findNonFinite(View(DType::F32, F32.data(), 16));
  EXPECT_EQ(Found.count, 2);
  EXPECT_EQ(Found.firstIndex, 1);
  EXPECT_EQ(findNonFinite(View(DType::BF16, Bf16.data(), 4)).firstIndex, 1);
  Found = findNonFinite(View(DType::F16, F16.data(), 6));
  EXPECT_EQ(Found.count, 1);
  EXPECT_EQ(Found.firstIndex, 2);
  EXPECT_EQ(findNonFinite(View(DType::I32, I32.data(), 8)).count, 0);
  EXPECT_EQ(findNonFinite(View(DType::F32, F32.data(), 4)).count, 0);
}
