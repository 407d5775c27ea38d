//===- artifact_test.cpp - Manifest validation, Engine and Generator ------===//
//
// Manifest validation runs on hand-made manifests. The Engine and Generator
// tests need a kernel library: the test-only fixture
// unittests/runtime/fixtures/fake_kernels.c (a toy model whose next token is
// the sum of the sequence's tokens mod 16, read back through the paged KV
// cache), found through QWEN_FAKE_KERNELS_PATH (set by CMake) or the
// QWEN_FAKE_KERNELS environment variable; without it those tests are skipped.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/artifact.h"
#include "qwen_rt/engine.h"
#include "qwen_rt/error.h"
#include "qwen_rt/generate.h"
#include "qwen_rt/image_prompt.h"
#include "qwen_rt/safetensors.h"
#include "qwen_rt/state_pool.h"
#include "qwen_rt/vision.h"
#include "qwen_rt/weights.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

namespace fs = std::filesystem;
using nlohmann::json;
using namespace qwen::rt;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "qwen-rt-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void writeText(const fs::path &p, const std::string &text) { std::ofstream(p, std::ios::binary) << text; }

std::string errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

#define EXPECT_ERROR(STMT, SUBSTR)                                                                                     \
  do {                                                                                                                 \
    std::string msg_ = errorOf([&] { STMT; });                                                                         \
    EXPECT_NE(msg_.find(SUBSTR), std::string::npos) << "message: " << msg_;                                            \
  } while (0)

std::string fakeKernelsPath() {
  if (const char *env = std::getenv("QWEN_FAKE_KERNELS"))
    return env;
#ifdef QWEN_FAKE_KERNELS_PATH
  return QWEN_FAKE_KERNELS_PATH;
#else
  return "";
#endif
}

/// A checkpoint for the toy model: bias.a/bias.b bf16 [8] (0.125 * index)
/// and model.norm.weight f32 [2] = {1, 0}.
void writeCheckpoint(const fs::path &dir) {
  fs::create_directories(dir);
  std::vector<uint16_t> a(8), b(8);
  for (int i = 0; i < 8; ++i) {
    a[size_t(i)] = f32ToBf16(0.125f * float(i));
    b[size_t(i)] = f32ToBf16(0.125f * float(i + 8));
  }
  float norm[2] = {1.0f, 0.0f};
  writeSafetensors((dir / "model.safetensors").string(), {{"bias.a", DType::BF16, {8}, a.data()},
                                                          {"bias.b", DType::BF16, {8}, b.data()},
                                                          {"model.norm.weight", DType::F32, {2}, norm}});
  writeText(dir / "generation_config.json", R"({"eos_token_id": 7})");
}

json toyManifest(const fs::path &checkpointDir) {
  json files = json::array();
  if (fs::exists(checkpointDir / "model.safetensors")) {
    SafetensorsFileInfo info = probeSafetensorsFile((checkpointDir / "model.safetensors").string());
    char hash[20];
    std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(info.headerHash));
    files.push_back({{"name", "model.safetensors"}, {"size", info.size}, {"header_fnv1a64", hash}});
  }
  json m = json::parse(R"({
    "format": "qwen-artifact", "format_version": 1, "compiler": "artifact_test",
    "target": {"kind": "cpu", "triple": "x86_64-unknown-linux-gnu", "cpu": "x86-64", "features": [],
               "object": "kernels.so"},
    "model": {"family": "toy", "vocab_size": 16, "max_position_embeddings": 64, "eos_token_ids": []},
    "checkpoint": {"dir": "", "files": [], "tokenizer": "tokenizer.json"},
    "kv_cache": {"num_layers": 2, "num_kv_heads": 1, "head_dim": 2, "page_size": 4, "dtype": "f32"},
    "symbols": ["T", "B", "P", "R"],
    "inputs": [
      {"name": "tokens", "dtype": "i32", "shape": ["T"]},
      {"name": "positions", "dtype": "i32", "shape": ["T"]},
      {"name": "token_seq", "dtype": "i32", "shape": ["T"]},
      {"name": "block_table", "dtype": "i32", "shape": ["B", "P"]},
      {"name": "logit_rows", "dtype": "i32", "shape": ["R"]}
    ],
    "weights": [
      {"id": 0, "dtype": "f32", "shape": [16], "sources": ["bias.a", "bias.b"]},
      {"id": 1, "dtype": "f32", "shape": [2], "sources": ["model.norm.weight"]}
    ],
    "buffers": [{"id": 0, "dtype": "f32", "shape": ["T"]}, {"id": 1, "dtype": "f32", "shape": ["R", 16]}],
    "program": [
      {"kernel": "fk_embed", "grid": ["T"], "args": [{"input": "tokens"}, {"weight": 1}, {"buffer": 0}]},
      {"kernel": "fk_store", "grid": ["T", 2],
       "args": [{"buffer": 0}, {"input": "positions"}, {"input": "token_seq"}, {"input": "block_table"},
                {"kv": "keys"}, {"kv": "values"}]},
      {"kernel": "fk_logits", "grid": ["R"],
       "args": [{"input": "logit_rows"}, {"input": "positions"}, {"input": "token_seq"}, {"input": "block_table"},
                {"kv": "keys"}, {"kv": "values"}, {"weight": 0}, {"buffer": 1}]}
    ],
    "output": {"buffer": 1, "dtype": "f32", "shape": ["R", 16]}
  })");
  m["checkpoint"]["dir"] = checkpointDir.string();
  m["checkpoint"]["files"] = files;
  return m;
}

/// An artifact folder (manifest + fake kernels when available) and its checkpoint.
struct ToyArtifact {
  TempDir tmp;
  fs::path dir = tmp.path / "toy.qwenc", checkpoint = tmp.path / "checkpoint";
  json manifest;
  explicit ToyArtifact(bool withKernels = true) {
    fs::create_directories(dir);
    writeCheckpoint(checkpoint);
    manifest = toyManifest(checkpoint);
    save();
    if (withKernels && !fakeKernelsPath().empty())
      fs::copy_file(fakeKernelsPath(), dir / "kernels.so");
  }
  void save() const { writeText(dir / "manifest.json", manifest.dump(2)); }
};

//===----------------------------------------------------------------------===//
// Manifest validation
//===----------------------------------------------------------------------===//

TEST(ArtifactTest, OpensAValidManifest) {
  ToyArtifact t(false);
  Artifact a = Artifact::open(t.dir.string());
  EXPECT_EQ(a.vocabSize(), 16);
  EXPECT_EQ(a.maxPositionEmbeddings(), 64);
  EXPECT_EQ(a.kvCache().pageSize, 4);
  EXPECT_EQ(a.inputs().size(), 5u);
  ASSERT_EQ(a.weights().size(), 2u);
  EXPECT_EQ(a.weights()[0].sources.size(), 2u);
  EXPECT_EQ(a.program().size(), 3u);
  EXPECT_EQ(formatShape(a.program()[1].grid), "[T, 2]");
  EXPECT_EQ(shapeProduct(a.program()[1].grid, {5, 1, 1, 1}), 10);
  EXPECT_EQ(a.outputBuffer(), 1);
  EXPECT_FALSE(a.outputsHiddenStates());
  EXPECT_EQ(a.outputWidth(), 16);
  EXPECT_NO_THROW(a.verifyCheckpoint(a.resolveCheckpointDir("")));
}

// A scaled RoPE's max_context replaces max_position_embeddings as the
// longest sequence; a hidden-state output is hidden_size wide.
TEST(ArtifactTest, MaxContextAndHiddenStateOutput) {
  ToyArtifact t(false);
  t.manifest["model"]["max_context"] = 256;
  t.manifest["model"]["hidden_size"] = 8;
  t.manifest["output"]["kind"] = "hidden_states";
  t.manifest["buffers"][1]["shape"] = {"R", 8};
  t.save();
  Artifact a = Artifact::open(t.dir.string());
  EXPECT_EQ(a.maxPositionEmbeddings(), 256);
  EXPECT_TRUE(a.outputsHiddenStates());
  EXPECT_EQ(a.outputWidth(), 8);
}

TEST(ArtifactTest, MissingFolderManifestOrJson) {
  TempDir tmp;
  EXPECT_ERROR(Artifact::open((tmp.path / "nope").string()), "does not exist");
  EXPECT_ERROR(Artifact::open(tmp.path.string()), "has no manifest.json");
  writeText(tmp.path / "manifest.json", "{\"format\": \"qwen-artifact\", ");
  EXPECT_ERROR(Artifact::open(tmp.path.string()), "manifest.json: malformed JSON");
}

TEST(ArtifactTest, RejectsOtherFormatVersions) {
  ToyArtifact t(false);
  t.manifest["format_version"] = 2;
  t.save();
  EXPECT_ERROR(Artifact::open(t.dir.string()),
               "artifact format version 2 is not supported by this runtime (expects 1); recompile with qwen-compile");
  t.manifest["format_version"] = 1;
  t.manifest["format"] = "gguf";
  t.save();
  EXPECT_ERROR(Artifact::open(t.dir.string()), "not a qwen-compile artifact");
}

/// Turns the toy manifest into a CUDA one whose entries are all generated
/// kernels with valid launch geometry.
static void makeCudaKernels(json &m) {
  m["target"]["kind"] = "cuda";
  m["target"]["arch"] = "sm_90";
  for (json &e : m["program"]) {
    e["block"] = 32;
    e["shared_bytes"] = 0;
  }
}

/// Turns the toy manifest into a CUDA one whose entries are all cuBLASLt
/// GEMMs: an f32 [T, k] x [k, n] GEMM (a = argument 0, b = argument 1) with
/// the descriptor fields of `edits` set on top.
static void makeCublasLtGemms(json &m, int n, int k, const json &edits = json::object()) {
  m["target"]["kind"] = "cuda";
  m["target"]["arch"] = "sm_90";
  for (json &e : m["program"]) {
    e.erase("grid");
    e["library"] = "cublaslt";
    e["cublaslt"] = {{"m", "T"},         {"n", n},         {"k", k},        {"a_arg", 0},
                     {"a_dtype", "f32"}, {"lda", k},       {"a_offset", 0}, {"b_arg", 1},
                     {"b_dtype", "f32"}, {"ldb", k},       {"b_offset", 0}, {"bias", false},
                     {"residual", false}, {"d_dtype", "f32"}, {"ldd", n}};
    e["cublaslt"].update(edits);
  }
}

struct BadManifestCase {
  const char *name;
  std::function<void(json &)> edit;
  const char *message;
};

TEST(ArtifactTest, ReportsEachKindOfBadManifest) {
  const BadManifestCase cases[] = {
      {"no program", [](json &m) { m.erase("program"); }, "missing field \"program\""},
      {"rocm target", [](json &m) { m["target"]["kind"] = "rocm"; }, "target \"rocm\" is not supported"},
      {"cuda target without arch", [](json &m) { m["target"]["kind"] = "cuda"; }, "target: missing field \"arch\""},
      {"cuda kernel without block",
       [](json &m) {
         m["target"]["kind"] = "cuda";
         m["target"]["arch"] = "sm_90";
       },
       "program[0] (kernel fk_embed): missing field \"block\""},
      {"cuda decode variant without a block size",
       [](json &m) {
         makeCudaKernels(m);
         m["program"][0]["decode"] = {{"kernel", "fk_embed_decode"}, {"grid", {"T"}}};
       },
       "program[0] (kernel fk_embed).decode: missing field \"block\""},
      {"cuda decode variant without its split-K sizes",
       [](json &m) {
         makeCudaKernels(m);
         m["program"][0]["decode"] = {
             {"kernel", "fk_embed_decode"}, {"grid", {"T"}}, {"block", 128}, {"shared_bytes", 0}};
       },
       "program[0] (kernel fk_embed).decode: missing field \"splits\""},
      {"cuda decode variant with a bad combine kernel",
       [](json &m) {
         makeCudaKernels(m);
         m["program"][0]["decode"] = {
             {"kernel", "fk_embed_decode"}, {"grid", {"T"}}, {"block", 128}, {"shared_bytes", 0},
             {"splits", {{"max", 32}, {"partial_floats", 132},
                         {"combine", {{"kernel", "fk_embed_combine"}, {"grid", {"T"}}, {"block", 2048},
                                      {"shared_bytes", 0}}}}}};
       },
       "program[0] (kernel fk_embed).decode.splits.combine.block: at most 1024 threads per block, got 2048"},
      {"cuda gemm with a strided result", [](json &m) { makeCublasLtGemms(m, 8, 8, {{"ldd", 16}}); },
       "cublaslt.ldd: D is dense: expected ldd = n = 8, got 16"},
      {"cuda fp8 gemm with a partial K block",
       [](json &m) { makeCublasLtGemms(m, 8, 16, {{"a_dtype", "f8e4m3"}, {"b_dtype", "f8e4m3"}}); },
       "cublaslt: an f8e4m3 GEMM needs k a multiple of 128 and lda, ldb multiples of 16"},
      {"cuda fp8 gemm whose weight scale rows are not 16-byte aligned",
       [](json &m) {
         makeCublasLtGemms(m, 8, 256,
                           {{"a_dtype", "f8e4m3"}, {"b_dtype", "f8e4m3"}, {"a_scale_arg", 0}, {"a_scale_offset", 0},
                            {"b_scale_arg", 1}, {"b_scale_offset", 0}, {"ldb_scale", 2}});
       },
       "cublaslt.ldb_scale: expected k / 128 = 2, a multiple of 4"},
      {"cuda gemm with an fp8 residual",
       [](json &m) {
         makeCublasLtGemms(m, 8, 8,
                           {{"residual", true}, {"c_arg", 0}, {"c_dtype", "f8e4m3"}, {"ldc", 8}, {"c_offset", 0}});
       },
       "cublaslt.c_dtype: expected f32, bf16 or f16, got \"f8e4m3\""},
      {"cuda gemm decode variant naming a missing argument",
       [](json &m) {
         makeCublasLtGemms(m, 8, 8);
         for (json &e : m["program"])
           e["decode"] = {{"kernel", "k_decode"}, {"grid", {2}}, {"block", 128}, {"shared_bytes", 0},
                          {"args", {0, 1, 9}},     {"max_rows", 8}};
       },
       "decode.args[2]: argument 9 does not exist"},
      {"cuda gemm decode variant without max_rows",
       [](json &m) {
         makeCublasLtGemms(m, 8, 8);
         for (json &e : m["program"])
           e["decode"] = {{"kernel", "k_decode"}, {"grid", {2}}, {"block", 128}, {"shared_bytes", 0},
                          {"args", {0, 1}}};
       },
       "decode: missing field \"max_rows\""},
      {"unknown dtype", [](json &m) { m["buffers"][0]["dtype"] = "f8"; }, "unknown dtype \"f8\""},
      {"unknown kv dtype", [](json &m) { m["kv_cache"]["dtype"] = "q4"; }, "kv_cache.dtype: unknown dtype \"q4\""},
      {"unknown symbol", [](json &m) { m["buffers"][0]["shape"] = {"N"}; }, "unknown symbol \"N\""},
      {"symbol order", [](json &m) { m["symbols"] = {"B", "T", "P", "R"}; }, "symbols: expected"},
      {"unknown arg kind", [](json &m) { m["program"][0]["args"][0] = {{"scalar", 3}}; },
       "unknown argument kind \"scalar\""},
      {"two arg kinds", [](json &m) { m["program"][0]["args"][0] = {{"buffer", 0}, {"weight", 0}}; },
       "expected an object with one of"},
      {"weight out of range", [](json &m) { m["program"][0]["args"][1] = {{"weight", 9}}; },
       "references weight 9, but no weight has that id"},
      {"buffer out of range", [](json &m) { m["program"][0]["args"][2] = {{"buffer", 5}}; },
       "references buffer 5, but no buffer has that id"},
      {"negative weight id", [](json &m) { m["weights"][0]["id"] = -1; }, "weight id -1 is out of range"},
      {"duplicate buffer id", [](json &m) { m["buffers"][1]["id"] = 0; }, "buffer id 0 is used twice"},
      {"unknown input arg", [](json &m) { m["program"][0]["args"][0] = {{"input", "mask"}}; },
       "references input \"mask\""},
      {"unknown input", [](json &m) { m["inputs"][0]["name"] = "mask"; }, "unknown input \"mask\""},
      {"input dtype", [](json &m) { m["inputs"][1]["dtype"] = "i64"; }, "must be i32"},
      {"bad kv arg", [](json &m) { m["program"][1]["args"][4] = {{"kv", "both"}}; }, "kv must be \"keys\" or \"values\""},
      {"bad kernel name", [](json &m) { m["program"][0]["kernel"] = "a-b"; }, "not a valid C symbol name"},
      {"empty grid", [](json &m) { m["program"][0]["grid"] = json::array(); }, "grid: must not be empty"},
      {"output shape", [](json &m) { m["buffers"][1]["shape"] = {"R", 8}; }, "the output buffer must be f32 [R, 16]"},
      {"output kind", [](json &m) { m["output"]["kind"] = "scores"; },
       "expected \"logits\" or \"hidden_states\", got \"scores\""},
      {"hidden states need hidden_size", [](json &m) { m["output"]["kind"] = "hidden_states"; },
       "model: missing field \"hidden_size\""},
      {"hidden-state width", [](json &m) { m["output"]["kind"] = "hidden_states"; m["model"]["hidden_size"] = 8; },
       "the output buffer must be f32 [R, 8]"},
      {"max context", [](json &m) { m["model"]["max_context"] = 0; }, "expected a positive integer"},
      {"weight shape", [](json &m) { m["weights"][0]["shape"] = {16, 0}; }, "expected positive integers"},
      {"vocab", [](json &m) { m["model"].erase("vocab_size"); }, "model: missing field \"vocab_size\""},
      {"page size", [](json &m) { m["kv_cache"]["page_size"] = 0; }, "expected a positive integer"},
      {"hash", [](json &m) { m["checkpoint"]["files"][0]["header_fnv1a64"] = "xyz"; }, "expected up to 16 hex digits"},
      // Sizes that used to wrap (issue 20, findings 5-7).
      {"weight dims whose product wraps to 0",
       [](json &m) { m["weights"][0]["shape"] = {16, int64_t(1) << 32, int64_t(1) << 32}; },
       "weights[0].shape: [16, 4294967296, 4294967296] has more than 2^40 elements"},
      {"kv layers", [](json &m) { m["kv_cache"]["num_layers"] = int64_t(1) << 62; },
       "kv_cache.num_layers: 4611686018427387904 exceeds the limit of 1024"},
      {"buffer dim", [](json &m) { m["buffers"][0]["shape"] = {"T", int64_t(1) << 62}; },
       "buffers[0].shape: entry 1 is 4611686018427387904, more than 2^40 elements"},
      {"weight rank", [](json &m) { m["weights"][1]["shape"] = {1, 1, 1, 1, 1, 1, 1, 1, 2}; },
       "has 9 dimensions; at most 8 are supported"},
      {"buffer id beyond int", [](json &m) { m["program"][0]["args"][2] = {{"buffer", (int64_t(1) << 32) + 1}}; },
       "program[0] (kernel fk_embed).args[2]: id 4294967297 is out of range"},
      {"weight id beyond int", [](json &m) { m["program"][0]["args"][1] = {{"weight", (int64_t(1) << 32) + 1}}; },
       "id 4294967297 is out of range"},
      {"output buffer beyond int", [](json &m) { m["output"]["buffer"] = (int64_t(1) << 32) + 1; },
       "output.buffer: id 4294967297 is out of range"},
      {"vocabulary", [](json &m) { m["model"]["vocab_size"] = int64_t(1) << 40; },
       "model.vocab_size: 1099511627776 exceeds the limit of 2097152"},
  };
  for (const BadManifestCase &c : cases) {
    SCOPED_TRACE(c.name);
    ToyArtifact t(false);
    c.edit(t.manifest);
    t.save();
    std::string msg = errorOf([&] { Artifact::open(t.dir.string()); });
    EXPECT_NE(msg.find(c.message), std::string::npos) << "message: " << msg;
    EXPECT_NE(msg.find("manifest.json"), std::string::npos) << "message: " << msg;
  }
}

/// A JSON value nested `depth` lists deep.
std::string nestedLists(int depth) { return std::string(size_t(depth), '[') + std::string(size_t(depth), ']'); }

TEST(ArtifactTest, HostileJsonFailsCleanly) {
  ToyArtifact t(false);
  std::string text = t.manifest.dump();
  // Deep nesting used to overflow the stack (issue 20, findings 8 and 9).
  std::string deep = text;
  deep.replace(deep.find("\"artifact_test\""), 15, nestedLists(100000));
  writeText(t.dir / "manifest.json", deep);
  EXPECT_ERROR(Artifact::open(t.dir.string()), "manifest.json: JSON nested deeper than 64 levels");

  // A value nested just within the limit is quoted briefly, not dumped whole.
  json nested = json::parse(nestedLists(55));
  t.manifest["program"][0]["args"][2] = {{"buffer", nested}};
  t.save();
  std::string msg = errorOf([&] { Artifact::open(t.dir.string()); });
  EXPECT_NE(msg.find("expected an integer, got [[[["), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 300u) << msg;

  // A number beyond double's range is a parse error naming the file (finding 10).
  std::string huge = text;
  huge.replace(huge.find("\"vocab_size\":16"), 15, "\"vocab_size\":1e999");
  writeText(t.dir / "manifest.json", huge);
  EXPECT_ERROR(Artifact::open(t.dir.string()), "manifest.json: malformed JSON");
}

TEST(ArtifactTest, StepSizesThatOverflowAreRefused) {
  // A buffer of [T, 2^39] is valid, but the engine's largest step makes it
  // larger than any tensor may be (issue 20, finding 6).
  ToyArtifact t(false);
  t.manifest["buffers"][0]["shape"] = {"T", int64_t(1) << 39};
  t.save();
  Artifact a = Artifact::open(t.dir.string());
  EngineOptions o;
  o.maxBatchTokens = 512;
  EXPECT_ERROR(planMemory(a, o), "the manifest shape [T, 549755813888] with T = 512");
  o.maxBatchTokens = 1;
  o.numPages = int64_t(1) << 62;
  EXPECT_ERROR(planMemory(a, o), "the KV cache size does not fit in 64 bits");
}

/// The toy manifest with a linear-attention state: a `state_slots` input and
/// a kernel reading both state arrays.
void addLinearState(json &m) {
  m["linear_state"] = {{"num_layers", 2},  {"conv_channels", 8}, {"conv_window", 3}, {"conv_dtype", "f32"},
                       {"num_heads", 2},   {"key_dim", 4},       {"value_dim", 4},  {"recurrent_dtype", "f32"}};
  m["inputs"].push_back({{"name", "state_slots"}, {"dtype", "i32"}, {"shape", {"B"}}});
  m["inputs"].push_back({{"name", "mrope_positions"}, {"dtype", "i32"}, {"shape", {"T", 3}}});
  m["program"][0]["args"].push_back({{"state", "conv"}});
  m["program"][0]["args"].push_back({{"state", "recurrent"}});
}

TEST(ArtifactTest, LinearStateSection) {
  ToyArtifact t(false);
  addLinearState(t.manifest);
  t.save();
  Artifact a = Artifact::open(t.dir.string());
  const LinearStateSpec &s = a.linearState();
  ASSERT_TRUE(s.present());
  EXPECT_EQ(s.convBytesPerSlot(), uint64_t(2 * 3 * 8 * 4));
  EXPECT_EQ(s.recurrentBytesPerSlot(), uint64_t(2 * 2 * 4 * 4 * 4));
  EXPECT_EQ(a.program()[0].args.back().kind, ArgRef::State);
  EXPECT_EQ(a.program()[0].args.back().index, 1);
  // Moving the artifact keeps the section (the engine holds a moved one).
  Artifact moved = std::move(a);
  EXPECT_TRUE(moved.linearState().present());

  const BadManifestCase cases[] = {
      {"bad state arg", [](json &m) { m["program"][0]["args"].back() = {{"state", "ssm"}}; },
       "state must be \"conv\" or \"recurrent\""},
      {"state without section", [](json &m) { m.erase("linear_state"); m["inputs"].erase(5); },
       "the manifest has no \"linear_state\""},
      {"slots without section",
       [](json &m) {
         m.erase("linear_state");
         m["program"][0]["args"].erase(m["program"][0]["args"].size() - 1);
         m["program"][0]["args"].erase(m["program"][0]["args"].size() - 1);
       },
       "input \"state_slots\" needs a \"linear_state\" section"},
      {"bf16 state", [](json &m) { m["linear_state"]["recurrent_dtype"] = "bf16"; }, "keeps conv and recurrent state in f32"},
      {"zero heads", [](json &m) { m["linear_state"]["num_heads"] = 0; }, "expected a positive integer"},
      {"mrope shape", [](json &m) { m["inputs"][6]["shape"] = {"T"}; }, "must have shape [T, 3]"},
  };
  for (const BadManifestCase &c : cases) {
    SCOPED_TRACE(c.name);
    ToyArtifact bad(false);
    addLinearState(bad.manifest);
    c.edit(bad.manifest);
    bad.save();
    std::string msg = errorOf([&] { Artifact::open(bad.dir.string()); });
    EXPECT_NE(msg.find(c.message), std::string::npos) << "message: " << msg;
  }
}

TEST(StatePoolTest, SlotsAreZeroedWhenClaimedAndIndependent) {
  LinearStateSpec spec;
  spec.numLayers = 2, spec.convChannels = 8, spec.convWindow = 3, spec.numHeads = 2, spec.keyDim = 4,
  spec.valueDim = 4;
  StatePool pool(spec, 3);
  ASSERT_FALSE(pool.empty());
  EXPECT_EQ(pool.totalBytes(), 3 * spec.bytesPerSlot());
  // Dirty every slot, then reset one: only that one is zero.
  std::memset(pool.conv(), 0x5a, spec.convBytesPerSlot() * 3);
  std::memset(pool.recurrent(), 0x5a, spec.recurrentBytesPerSlot() * 3);
  pool.reset(1);
  for (int slot = 0; slot < 3; ++slot) {
    std::vector<uint8_t> bytes = pool.snapshot(slot);
    ASSERT_EQ(bytes.size(), spec.bytesPerSlot());
    bool zero = std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
    bool dirty = std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0x5a; });
    EXPECT_TRUE(slot == 1 ? zero : dirty) << "slot " << slot;
  }
  EXPECT_ERROR(pool.reset(3), "state slot 3 is out of range [0, 3)");
  StatePool none(LinearStateSpec{}, 4);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.totalBytes(), 0u);
  EXPECT_NO_THROW(none.reset(0));
}

TEST(ArtifactTest, KernelLibraryProblems) {
  ToyArtifact t(false);
  Artifact a = Artifact::open(t.dir.string());
  EXPECT_ERROR(a.loadKernels(), "has no kernel library kernels.so");
  writeText(t.dir / "kernels.so", "not an ELF file");
  EXPECT_ERROR(a.loadKernels(), "cannot load kernel library");

  t.manifest["target"]["features"] = {"avx9000"};
  t.save();
  Artifact b = Artifact::open(t.dir.string());
  EXPECT_ERROR(b.loadKernels(), "target feature \"avx9000\" is unknown");
}

TEST(ArtifactTest, CheckpointIdentity) {
  ToyArtifact t(false);
  Artifact a = Artifact::open(t.dir.string());
  EXPECT_ERROR(a.verifyCheckpoint((t.tmp.path / "elsewhere").string()), "pass --checkpoint DIR");
  fs::rename(t.checkpoint / "model.safetensors", t.checkpoint / "x.safetensors");
  EXPECT_ERROR(a.verifyCheckpoint(t.checkpoint.string()), "checkpoint file model.safetensors is missing");
  // Same size, different header: one tensor renamed.
  std::vector<uint16_t> a8(8, 0), b8(8, 0);
  float norm[2] = {1, 0};
  writeSafetensors((t.checkpoint / "model.safetensors").string(), {{"bias.A", DType::BF16, {8}, a8.data()},
                                                                   {"bias.b", DType::BF16, {8}, b8.data()},
                                                                   {"model.norm.weight", DType::F32, {2}, norm}});
  EXPECT_ERROR(a.verifyCheckpoint(t.checkpoint.string()), "changed since compilation");
  // A relative checkpoint dir is taken from the artifact folder.
  t.manifest["checkpoint"]["dir"] = "../checkpoint";
  t.save();
  EXPECT_EQ(fs::path(Artifact::open(t.dir.string()).resolveCheckpointDir("")), (t.dir / "../checkpoint").lexically_normal());
  EXPECT_EQ(Artifact::open(t.dir.string()).resolveCheckpointDir("/x"), "/x");
  // Compiled from config.json alone: no checkpoint recorded.
  t.manifest["checkpoint"]["dir"] = "";
  t.manifest["checkpoint"]["files"] = json::array();
  t.save();
  Artifact none = Artifact::open(t.dir.string());
  EXPECT_EQ(none.resolveCheckpointDir(""), "");
  EXPECT_ERROR(none.verifyCheckpoint(""), "compiled without a checkpoint");
}

//===----------------------------------------------------------------------===//
// Engine and Generator on the fake kernels
//===----------------------------------------------------------------------===//

class EngineTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (fakeKernelsPath().empty() || !fs::exists(fakeKernelsPath()))
      GTEST_SKIP() << "fake kernel library not built (QWEN_FAKE_KERNELS_PATH / QWEN_FAKE_KERNELS)";
  }
  std::unique_ptr<Engine> load(EngineOptions o = {}) {
    if (o.numThreads == 0)
      o.numThreads = 3;
    return Engine::load(toy.dir.string(), o);
  }
  ToyArtifact toy;
};

/// The toy model's greedy next token after `prefix`.
int32_t toyNext(const std::vector<int32_t> &prefix) {
  int64_t sum = 0;
  for (int32_t t : prefix)
    sum += t;
  return int32_t(sum % 16);
}

int32_t argmaxRow(const std::vector<float> &logits, size_t row) { return argmax(&logits[row * 16], 16); }

TEST_F(EngineTest, LoadsAndBindsWeights) {
  auto e = load();
  MemoryPlan p = e->memoryPlan();
  EXPECT_EQ(p.weightBytes, 16u * 4 + 2 * 4);
  EXPECT_EQ(p.weightBytesMapped, 8u); // the f32 norm weight, zero copy
  EXPECT_EQ(p.pageSize, 4);
  EXPECT_EQ(p.maxContext, 64);
  EXPECT_EQ(p.numPages, 8 * 16);
  EXPECT_NE(p.describe().find("fits         8 sequences of 64 tokens"), std::string::npos) << p.describe();
  EXPECT_EQ(e->vocabSize(), 16);
  EXPECT_EQ(e->modelInfo()["family"], "toy");
  EXPECT_EQ(e->tokenizer(), nullptr); // the toy checkpoint has no tokenizer.json
  EXPECT_EQ(defaultStopTokens(*e), std::vector<int32_t>{7});
}

TEST_F(EngineTest, PrefillAllLogitsFollowTheToyModel) {
  auto e = load();
  int s = e->createSequence();
  std::vector<int32_t> prompt = {3, 9, 1, 14, 2, 6, 11, 5, 8, 0, 13};
  std::vector<float> logits = e->forward({{s, prompt}}, /*allLogits=*/true);
  ASSERT_EQ(logits.size(), prompt.size() * 16);
  for (size_t i = 0; i < prompt.size(); ++i) {
    std::vector<int32_t> prefix(prompt.begin(), prompt.begin() + long(i) + 1);
    int32_t want = toyNext(prefix);
    EXPECT_EQ(argmaxRow(logits, i), want) << "row " << i;
    // Bias = 0.125 * v: both sources, in order, converted from bf16.
    for (int v = 0; v < 16; ++v)
      EXPECT_EQ(logits[i * 16 + size_t(v)], 0.125f * float(v) + (v == want ? 100.0f : 0.0f));
  }
  EXPECT_EQ(e->sequenceLength(s), int64_t(prompt.size()));
}

TEST_F(EngineTest, PrefillThenDecodeMatchesFullForwardAndSplitting) {
  std::vector<int32_t> tokens = {5, 12, 7, 7, 1, 0, 15, 3, 9, 4, 2, 2, 8, 6};
  auto full = load();
  int s = full->createSequence();
  std::vector<float> reference = full->forward({{s, tokens}}, true);

  EngineOptions small;
  small.maxBatchTokens = 3; // every step is split
  for (auto *opts : {static_cast<EngineOptions *>(nullptr), &small}) {
    auto e = load(opts ? *opts : EngineOptions{});
    int q = e->createSequence();
    std::vector<float> first = e->forward({{q, std::vector<int32_t>(tokens.begin(), tokens.begin() + 6)}}, true);
    std::vector<float> rows = first;
    for (size_t i = 6; i < tokens.size(); ++i) {
      std::vector<float> r = e->forward({{q, {tokens[i]}}});
      rows.insert(rows.end(), r.begin(), r.end());
    }
    EXPECT_EQ(rows, reference);
    // Last-row mode on a split prompt returns one row: the last token's.
    int q2 = e->createSequence();
    std::vector<float> last = e->forward({{q2, tokens}});
    ASSERT_EQ(last.size(), 16u);
    EXPECT_TRUE(std::equal(last.begin(), last.end(), reference.end() - 16));
  }
}

TEST_F(EngineTest, MixedRaggedBatch) {
  auto e = load();
  int a = e->createSequence(), b = e->createSequence(), c = e->createSequence();
  std::vector<int32_t> pa = {1, 2, 3, 4, 5, 6}, pb = {9}, pc = {15, 15, 15, 15, 15};
  e->forward({{a, pa}});
  e->forward({{b, pb}});
  // a decodes, c prefills, b decodes: one step.
  std::vector<float> out = e->forward({{a, {7}}, {c, pc}, {b, {10}}});
  ASSERT_EQ(out.size(), 3u * 16);
  pa.push_back(7);
  pb.push_back(10);
  EXPECT_EQ(argmaxRow(out, 0), toyNext(pa));
  EXPECT_EQ(argmaxRow(out, 1), toyNext(pc));
  EXPECT_EQ(argmaxRow(out, 2), toyNext(pb));
  std::vector<float> all = e->forward({{c, {1, 2}}, {a, {3}}}, true);
  ASSERT_EQ(all.size(), 3u * 16);
  pc.push_back(1);
  EXPECT_EQ(argmaxRow(all, 0), toyNext(pc));
  pc.push_back(2);
  EXPECT_EQ(argmaxRow(all, 1), toyNext(pc));
  pa.push_back(3);
  EXPECT_EQ(argmaxRow(all, 2), toyNext(pa));
}

TEST_F(EngineTest, ForwardGreedyPicksEachChunksNextToken) {
  auto e = load();
  int a = e->createSequence(), b = e->createSequence();
  std::vector<int32_t> pa = {1, 2, 3}, pb = {9, 4};
  std::vector<int32_t> ids = e->forwardGreedy({{a, pa}, {b, pb}});
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], toyNext(pa));
  EXPECT_EQ(ids[1], toyNext(pb));
  pa.push_back(ids[0]);
  pb.push_back(ids[1]);
  ids = e->forwardGreedy({{b, {pb.back()}}, {a, {pa.back()}}});
  EXPECT_EQ(ids, (std::vector<int32_t>{toyNext(pb), toyNext(pa)}));
  EXPECT_EQ(e->sequenceLength(a), 4);
}

TEST_F(EngineTest, StepRequestsChooseTheOutput) {
  auto e = load();
  int a = e->createSequence(), b = e->createSequence();
  std::vector<int32_t> pa = {1, 2, 3}, pb = {9, 4};
  Engine::StepResult rows = e->step({{a, pa}, {b, pb}}, {StepOutput::Rows, /*allRows=*/true});
  ASSERT_EQ(rows.rows.size(), (pa.size() + pb.size()) * 16);
  EXPECT_TRUE(rows.ids.empty());
  EXPECT_EQ(argmaxRow(rows.rows, 2), toyNext(pa));
  EXPECT_EQ(argmaxRow(rows.rows, 4), toyNext(pb));
  pa.push_back(5);
  pb.push_back(6);
  Engine::StepResult ids = e->step({{a, {5}}, {b, {6}}}, {StepOutput::GreedyIds, false});
  EXPECT_TRUE(ids.rows.empty());
  EXPECT_EQ(ids.ids, (std::vector<int32_t>{toyNext(pa), toyNext(pb)}));
  // The CPU selects no candidates; every token's ids is not a thing.
  EXPECT_EQ(e->topKCandidates(), 0);
  EXPECT_ERROR(e->step({{a, {1}}}, {StepOutput::TopCandidates, false}), "selects no top-k candidates");
  EXPECT_ERROR(e->step({{a, {1}}}, {StepOutput::GreedyIds, true}), "only logits rows");
  EXPECT_EQ(e->sequenceLength(a), 4);
}

TEST_F(EngineTest, BadRequestsLoseNothing) {
  EngineOptions o;
  o.maxSequences = 2;
  o.maxContext = 10;
  o.numPages = 3;
  auto e = load(o);
  int s = e->createSequence();
  e->forward({{s, {1, 2, 3}}});
  int64_t free = e->freePages();
  EXPECT_ERROR(e->forward({{s, {4, 16, 5}}}), "token id 16 at position 1 is out of range for vocabulary of 16");
  EXPECT_ERROR(e->forward({{s, {-1}}}), "token id -1 at position 0");
  EXPECT_ERROR(e->forward({{s, {1, 1, 1, 1, 1, 1, 1, 1}}}), "exceeds the context of 10 tokens");
  EXPECT_ERROR(e->forward({{s, {1}}, {s, {2}}}), "appears twice");
  EXPECT_ERROR(e->forward({{s, {}}}), "has no tokens");
  EXPECT_ERROR(e->forward({{1, {1}}}), "sequence 1 does not exist");
  int t = e->createSequence();
  EXPECT_ERROR(e->createSequence(), "all 2 sequences are in use");
  EXPECT_ERROR(e->forward({{s, {1}}, {t, {1, 2, 3, 4, 5, 6, 7, 8, 9}}}), "out of KV cache pages");
  EXPECT_EQ(e->sequenceLength(s), 3);
  EXPECT_EQ(e->sequenceLength(t), 0);
  EXPECT_EQ(e->freePages(), free);
  // Still works, and the state is what it was.
  std::vector<float> out = e->forward({{s, {4}}});
  EXPECT_EQ(argmaxRow(out, 0), toyNext({1, 2, 3, 4}));
  e->releaseSequence(s);
  EXPECT_EQ(e->freePages(), 3);
  EXPECT_ERROR(e->sequenceLength(s), "does not exist");
  EXPECT_NO_THROW(e->forward({{t, {1, 2, 3, 4, 5, 6, 7, 8, 9}}}));
}

TEST_F(EngineTest, LoadErrors) {
  EngineOptions o;
  o.maxContext = 65;
  EXPECT_ERROR(load(o), "exceeds the model's 64 (max_position_embeddings)");
  o = {};
  o.checkpointDir = (toy.tmp.path / "missing").string();
  EXPECT_ERROR(load(o), "pass --checkpoint DIR");

  toy.manifest["program"][2]["kernel"] = "fk_missing";
  toy.save();
  EXPECT_ERROR(load(), "has no kernel \"fk_missing\" used by program[2]");
  toy.manifest["program"][2]["kernel"] = "fk_logits";
  toy.manifest["weights"][0]["shape"] = {17};
  toy.save();
  EXPECT_ERROR(load(), "stacked into weight 0 (bias.a and 1 more) ('bias.a' [8], 'bias.b' [8]) have 16 rows together");
  toy.manifest["weights"][0]["shape"] = {16};
  toy.manifest["weights"][1]["sources"] = {"model.final_norm.weight"};
  toy.save();
  EXPECT_ERROR(load(), "has no tensor 'model.final_norm.weight'");
}

TEST_F(EngineTest, RandomWeightsNeedNoCheckpoint) {
  fs::remove_all(toy.checkpoint);
  EngineOptions o;
  o.randomWeights = true;
  o.seed = 7;
  auto e = load(o);
  EXPECT_EQ(e->memoryPlan().weightBytesMapped, 0u);
  EXPECT_TRUE(e->checkpointDir().empty());
  int s = e->createSequence();
  std::vector<int32_t> prompt = {4, 4, 4, 9};
  std::vector<float> out = e->forward({{s, prompt}}, true);
  // norm.weight is 1.0, so the model still counts; the bias is small noise.
  for (size_t i = 0; i < prompt.size(); ++i)
    EXPECT_EQ(argmaxRow(out, i), toyNext(std::vector<int32_t>(prompt.begin(), prompt.begin() + long(i) + 1)));
  float bias0 = out[0] - (toyNext({4}) == 0 ? 100.0f : 0.0f);
  EXPECT_NE(bias0, 0.0f);
  EXPECT_LT(std::abs(bias0), 0.2f);
  // Same seed, same weights, whatever the thread count.
  o.numThreads = 1;
  auto e1 = load(o);
  int s1 = e1->createSequence();
  EXPECT_EQ(e1->forward({{s1, prompt}}, true), out);
}

TEST_F(EngineTest, GeneratorStopsForEachReason) {
  EngineOptions o;
  o.maxContext = 12;
  auto e = load(o);
  std::vector<TokenEvent> events;
  Generator g(*e, [&](const TokenEvent &ev) { events.push_back(ev); });

  GenerationRequest r;
  r.prompt = {1, 2};
  r.maxNewTokens = 5;
  r.stopTokens = std::vector<int32_t>{};
  int length = g.submit(r); // 1 2 -> 3 -> 6 -> 12 -> 8 -> 0
  r.prompt = {3, 1};        // 3 1 -> 4 -> 8 -> 0 -> 0 ... until eos 7 never; stop at 0 below
  r.stopTokens = std::vector<int32_t>{0};
  int stop = g.submit(r);
  r.prompt = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}; // 10 tokens, context 12: two generated
  r.stopTokens.reset();                     // default: eos 7 from generation_config.json
  r.maxNewTokens = 100;
  int context = g.submit(r);
  g.runToCompletion();
  EXPECT_EQ(g.active(), 0);
  EXPECT_EQ(e->liveSequences(), 0);
  EXPECT_EQ(e->freePages(), e->memoryPlan().numPages);

  EXPECT_EQ(g.result(length).tokens, (std::vector<int32_t>{3, 6, 12, 8, 0}));
  EXPECT_EQ(g.result(length).finish, FinishReason::Length);
  EXPECT_EQ(g.result(stop).tokens, (std::vector<int32_t>{4, 8}));
  EXPECT_EQ(g.result(stop).stopToken, std::optional<int32_t>(0));
  EXPECT_EQ(g.result(stop).finish, FinishReason::Stop);
  EXPECT_EQ(g.result(context).tokens, (std::vector<int32_t>{10, 4, 8}));
  EXPECT_EQ(g.result(context).finish, FinishReason::Context);

  int stops = 0;
  for (const TokenEvent &ev : events)
    stops += ev.isStop;
  EXPECT_EQ(stops, 1);
  EXPECT_EQ(events.size(), 5u + 3u + 3u);

  r.prompt = std::vector<int32_t>(13, 1);
  EXPECT_ERROR(g.submit(r), "prompt of 13 tokens exceeds the context of 12 tokens");
  r.prompt = {};
  EXPECT_ERROR(g.submit(r), "the prompt is empty");
  r.prompt = {20};
  EXPECT_ERROR(g.submit(r), "token id 20 at position 0 is out of range");
}

TEST_F(EngineTest, ContinuousBatchingMatchesOneAtATime) {
  EngineOptions o;
  o.maxSequences = 2;
  o.maxBatchTokens = 5;
  auto e = load(o);
  Generator g(*e);
  std::vector<std::vector<int32_t>> prompts = {{1}, {2, 3, 4, 5, 6, 7, 8}, {9, 9}, {3, 3, 3}, {15}};
  std::vector<int> ids;
  for (const auto &p : prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.maxNewTokens = 6;
    r.stopTokens = std::vector<int32_t>{};
    ids.push_back(g.submit(r));
  }
  int steps = 0;
  while (g.step()) {
    EXPECT_LE(e->liveSequences(), 2);
    ++steps;
  }
  EXPECT_LT(steps, 5 * 7); // requests overlapped
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> seq = prompts[i], want;
    for (int k = 0; k < 6; ++k) {
      want.push_back(toyNext(seq));
      seq.push_back(want.back());
    }
    EXPECT_EQ(g.result(ids[i]).tokens, want) << "request " << i;
  }
}

//===----------------------------------------------------------------------===//
// Images: the step inputs of a vision-language artifact
//===----------------------------------------------------------------------===//

/// The toy manifest as a vision-language model's: mrope_positions,
/// image_rows and image_embeds inputs (the fake kernels ignore them) and a
/// model.vision section whose <|image_pad|> is token 9.
void addVision(json &m) {
  m["model"]["hidden_size"] = 4;
  m["model"]["vision"] = {{"image_token_id", 9}, {"vision_start_token_id", 10}, {"vision_end_token_id", 11},
                          {"spatial_merge_size", 2}};
  m["inputs"].push_back({{"name", "mrope_positions"}, {"dtype", "i32"}, {"shape", {"T", 3}}});
  m["inputs"].push_back({{"name", "image_rows"}, {"dtype", "i32"}, {"shape", {"T"}}});
  m["inputs"].push_back({{"name", "image_embeds"}, {"dtype", "f32"}, {"shape", {"T", 4}}});
}

TEST(ArtifactTest, ImageInputs) {
  ToyArtifact t(false);
  addVision(t.manifest);
  t.save();
  EXPECT_EQ(Artifact::open(t.dir.string()).inputs().size(), 8u);
  t.manifest["inputs"][7]["shape"] = {"T", 8};
  t.save();
  EXPECT_ERROR(Artifact::open(t.dir.string()), "input \"image_embeds\" must have shape [T, 4], got [T, 8]");
  t.manifest["inputs"][7]["shape"] = {"T", 4};
  t.manifest["inputs"][7]["dtype"] = "i32";
  t.save();
  EXPECT_ERROR(Artifact::open(t.dir.string()), "input \"image_embeds\" must be f32");
  t.manifest["inputs"][7]["dtype"] = "f32";
  t.manifest["model"].erase("vision");
  t.save();
  EXPECT_ERROR(Artifact::open(t.dir.string()), "needs a \"model.vision\" section");
}

TEST_F(EngineTest, ImageChunksAreValidatedBeforeAnyChange) {
  addVision(toy.manifest);
  toy.save();
  auto e = load();
  ASSERT_TRUE(e->acceptsImages());
  EXPECT_EQ(e->imageTokenId(), 9);
  EXPECT_EQ(e->spatialMergeSize(), 2);
  int s = e->createSequence();
  // Text 1, then a (1, 4, 4) image: 2 x 2 merged tokens, then text 2.
  std::vector<int32_t> tokens = {1, 9, 9, 9, 9, 2};
  MropePositions positions = computeMropePositions(tokens, 9, {{1, 4, 4}}, 2);
  std::vector<int32_t> rows(positions.rows.begin(), positions.rows.end());
  std::vector<float> embeds(16, 0.5f);
  auto chunk = [&] { return Engine::SequenceChunk{s, tokens, {1, 2, 3, 4}, embeds, rows}; };

  Engine::SequenceChunk c = chunk();
  c.imageEmbeds.pop_back();
  EXPECT_ERROR(e->forward({c}), "has 4 image rows but 15 embedding values (expected 4 x 4)");
  c = chunk();
  c.imageRows = {0, 1, 2, 3};
  EXPECT_ERROR(e->forward({c}), "which is not an image token");
  c = chunk();
  c.imageRows = {1, 2, 3};
  c.imageEmbeds.resize(12);
  EXPECT_ERROR(e->forward({c}), "has an image token at 4 without an embedding row");
  c = chunk();
  c.mropePositions.pop_back();
  EXPECT_ERROR(e->forward({c}), "has 17 rotary positions for 6 tokens");
  c = chunk();
  c.mropePositions.clear();
  EXPECT_ERROR(e->forward({c}), "has images but no rotary position rows");
  EXPECT_EQ(e->sequenceLength(s), 0);

  // A valid chunk; then decode resumes at max + 1: the rope delta.
  e->forward({chunk()});
  EXPECT_EQ(e->sequenceLength(s), 6);
  EXPECT_EQ(e->ropeDelta(s), positions.ropeDelta);
  EXPECT_EQ(positions.ropeDelta, -2);
  e->forward({{s, {3}}});
  EXPECT_EQ(e->ropeDelta(s), -2);
  // Pages holding image tokens are never shared: the same tokens in a new
  // sequence reuse nothing (their image rows could differ).
  int other = e->createSequence();
  EXPECT_EQ(e->reusePrefix(other, {1, 9, 9, 9, 9, 2, 3, 5}).reused, 0);
  // Text-only prompts still share their pages.
  int text = e->createSequence();
  e->forward({{text, {1, 2, 3, 4, 5, 6}}});
  int again = e->createSequence();
  EXPECT_EQ(e->reusePrefix(again, {1, 2, 3, 4, 5, 6}).reused, 4);
  // A model's generated image token, in a chunk without images, embeds as text.
  e->forward({{again, {5, 6, 9}}});
}

TEST_F(EngineTest, ImagesForATextOnlyModel) {
  auto e = load();
  EXPECT_FALSE(e->acceptsImages());
  int s = e->createSequence();
  EXPECT_ERROR(e->forward({{s, {1, 2}, {1}, std::vector<float>(4, 0.f), {}}}), "takes none");
  EXPECT_ERROR(e->forward({{s, {1, 2}, {}, {}, {0, 1, 0, 1, 0, 1}}}), "has no multimodal RoPE");
  EXPECT_EQ(e->sequenceLength(s), 0);
}

TEST_F(EngineTest, VisionEncoderNamedWithoutItsProgram) {
  // model.vision.encoder names the top-level vision section, which this
  // manifest lacks: refused at load.
  addVision(toy.manifest);
  toy.manifest["model"]["vision"]["encoder"] = "vision";
  toy.save();
  EXPECT_ERROR(load(), "model.vision.encoder names the vision program, but the manifest has no vision section");
}

TEST_F(EngineTest, GeneratorFeedsImagePromptsInPieces) {
  addVision(toy.manifest);
  toy.save();
  EngineOptions o;
  o.maxBatchTokens = 3; // prompt pieces split the image's run of 4 pad tokens
  auto e = load(o);
  // A stand-in for the vision program: rows of the merged-patch count.
  std::vector<int> encoded;
  ImageEncoder encoder = [&](const std::vector<PixelValues> &images) {
    std::vector<ImageEmbedding> out;
    for (const PixelValues &image : images) {
      encoded.push_back(int(image.rows));
      out.push_back({image.gridThw, std::vector<float>(size_t(image.mergedTokens(2) * 4), 1.0f)});
    }
    return out;
  };
  PixelValues pixels;
  pixels.gridThw = {1, 4, 4};
  pixels.rows = 16;
  ImagePrompt prompt = prepareImagePrompt(*e, {1, 10, 9, 11, 2}, {pixels}, encoder);
  EXPECT_EQ(encoded, std::vector<int>{16});
  EXPECT_EQ(prompt.ids, (std::vector<int32_t>{1, 10, 9, 9, 9, 9, 11, 2}));
  // An encoder that loses an image, and a placeholder count that does not match.
  EXPECT_ERROR(prepareImagePrompt(*e, {1, 9}, {pixels}, [](const std::vector<PixelValues> &) {
                 return std::vector<ImageEmbedding>{};
               }),
               "the vision encoder returned 0 images for 1");
  EXPECT_ERROR(prepareImagePrompt(*e, {1, 2}, {pixels}, encoder), "0 image placeholders for 1 images");
  // The toy takes images but has no vision program (compiled with
  // --no-vision): the artifact's own encoder refuses, naming the flag.
  EXPECT_FALSE(e->hasVision());
  EXPECT_ERROR(visionEncoder(*e), "compiled with --no-vision");
  EXPECT_ERROR(prepareImagePrompt(*e, {1, 9, 2}, {pixels}), "compiled with --no-vision");

  Generator g(*e);
  GenerationRequest r;
  r.prompt = prompt.ids;
  r.images = std::make_shared<const ImagePrompt>(prompt);
  r.maxNewTokens = 3;
  r.stopTokens = std::vector<int32_t>{};
  int id = g.submit(r);
  g.runToCompletion();
  // The toy model reads the tokens only: its answer to the expanded prompt.
  std::vector<int32_t> seen = prompt.ids, want;
  for (int i = 0; i < 3; ++i) {
    want.push_back(toyNext(seen));
    seen.push_back(want.back());
  }
  EXPECT_EQ(g.result(id).tokens, want);
  EXPECT_EQ(g.result(id).promptTokens, 8);
  // A prompt that is not the image prompt's ids.
  r.prompt = {1, 2};
  EXPECT_ERROR(g.submit(r), "the prompt is not the ids of its image prompt");
}

} // namespace

/// A vision section of the toy's model (hidden 8, 2 heads of 4, patches of
/// 2x2x2 over 3 channels: 24 floats a row, rotary halves of 2): one kernel
/// from pixel rows to the merged output [R, 4].
void addVisionProgram(json &m) {
  addVision(m);
  m["vision"] = {
      {"config",
       {{"depth", 1}, {"hidden_size", 8}, {"num_heads", 2}, {"in_channels", 3}, {"patch_size", 2},
        {"temporal_patch_size", 2}, {"spatial_merge_size", 2}, {"out_hidden_size", 4},
        {"num_position_embeddings", 16}, {"rope_theta", 10000.0}}},
      {"inputs",
       {{{"name", "pixel_values"}, {"dtype", "f32"}, {"shape", {"T", 24}}},
        {{"name", "pos_indices"}, {"dtype", "i32"}, {"shape", {"T", 4}}},
        {{"name", "pos_weights"}, {"dtype", "f32"}, {"shape", {"T", 4}}},
        {{"name", "rope_cos"}, {"dtype", "f32"}, {"shape", {"T", 2}}},
        {{"name", "rope_sin"}, {"dtype", "f32"}, {"shape", {"T", 2}}},
        {{"name", "segment_bounds"}, {"dtype", "i32"}, {"shape", {"T", 2}}}}},
      {"weights", {{{"id", 0}, {"dtype", "f32"}, {"shape", {8, 24}}, {"sources", {"visual.patch_embed.weight"}}}}},
      {"buffers", {{{"id", 0}, {"dtype", "f32"}, {"shape", {"T", 8}}}, {{"id", 1}, {"dtype", "f32"}, {"shape", {"R", 4}}}}},
      {"program", {{{"kernel", "vk_embed"}, {"grid", {"T"}}, {"args", {{{"input", "pixel_values"}}, {{"weight", 0}}, {{"buffer", 1}}}}}}},
      {"output", {{"buffer", 1}}}};
  m["model"]["vision"]["encoder"] = "vision";
}

TEST(ArtifactTest, VisionSectionReadAsTheStepProgram) {
  ToyArtifact t(false);
  addVisionProgram(t.manifest);
  t.save();
  std::optional<VisionProgramSpec> spec = parseVisionProgram(Artifact::open(t.dir.string()));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->program.size(), 1u);
  EXPECT_EQ(spec->program[0].args[1].kind, ArgRef::Weight);
  EXPECT_EQ(spec->outputBuffer, 1);
  // The tables are checked by the step program's reader, with the vision
  // symbols (T and R) only, and errors name the JSON path under "vision".
  const std::pair<std::function<void(json &)>, std::string> cases[] = {
      {[](json &v) { v["buffers"][0]["shape"] = {"B", 8}; },
       "vision.buffers[0].shape: unknown symbol \"B\" (known symbols: T, R)"},
      {[](json &v) { v["buffers"][1]["id"] = 0; }, "vision.buffers[1].id: buffer id 0 is used twice"},
      {[](json &v) { v["program"][0]["args"][1] = {{"weight", 3}}; },
       "vision.program[0] (kernel vk_embed).args[1]: references weight 3, but no weight has that id"},
      {[](json &v) { v["program"][0]["args"][0] = {{"kv", "keys"}}; }, "unknown argument kind \"kv\""},
      {[](json &v) { v["program"][0]["kernel"] = "vk-embed"; }, "not a valid C symbol name"},
      {[](json &v) { v["weights"][0]["dtype"] = "f8e4m3"; }, "an f8e4m3 weight needs model.weight_quantization"},
      {[](json &v) { v["program"] = json::array(); }, "vision.program: is empty"},
      {[](json &v) { v["output"]["buffer"] = 0; }, "vision.output: the output buffer must be f32 [R, 4]"},
      {[](json &v) { v["config"]["num_position_embeddings"] = 15; }, "must be a square"},
      {[](json &v) { v["inputs"][2]["shape"] = {"T", 3}; }, "unexpected input \"pos_weights\""},
  };
  for (const auto &[mutate, error] : cases) {
    ToyArtifact bad(false);
    addVisionProgram(bad.manifest);
    mutate(bad.manifest["vision"]);
    bad.save();
    EXPECT_ERROR(parseVisionProgram(Artifact::open(bad.dir.string())), error);
  }
}
