//===- Manifest.cpp - The target-independent part of an artifact ----------===//
//
// The host function `@step` (qtf.weight ops, step inputs and qkernel.launch
// ops with planned buffers and grids) becomes the manifest's weight table,
// buffer table and program. The kernels themselves are the target writers'
// business (lib/Target/CPU, lib/Target/CUDA).
//
//===----------------------------------------------------------------------===//
#include "qwen/Target/Common/Manifest.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"
#include "qwen/Passes/Common/ShapeSymbols.h"
#include "qwen_rt/launch_schema.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <optional>

using namespace mlir;
using namespace qwen;
using namespace qwen::target;
using llvm::json::Array;
using llvm::json::Object;
namespace schema = qwen::launch_schema;

/// A manifest key from the launch schema (static storage: borrowed).
static llvm::StringRef key(std::string_view name) { return {name.data(), name.size()}; }

llvm::Error qwen::target::makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static std::string dtypeName(Type type) {
  if (type.isBF16())
    return "bf16";
  if (type.isF16())
    return "f16";
  if (type.isF32())
    return "f32";
  if (type.isInteger(32))
    return "i32";
  if (isa<Float8E4M3FNType>(type))
    return "f8e4m3"; // block-wise FP8 weights (with an f32 scale weight)
  return "unsupported";
}

/// JSON of a launch descriptor attribute (strings, integers, booleans,
/// symbol references by their leaf name, nested dictionaries).
static llvm::json::Value attributeJson(Attribute attr) {
  if (auto dict = dyn_cast<DictionaryAttr>(attr)) {
    Object object;
    for (NamedAttribute field : dict)
      object[field.getName().str()] = attributeJson(field.getValue());
    return object;
  }
  if (auto flag = dyn_cast<BoolAttr>(attr))
    return flag.getValue();
  if (auto integer = dyn_cast<IntegerAttr>(attr))
    return integer.getInt();
  if (auto text = dyn_cast<StringAttr>(attr))
    return text.str();
  if (auto symbol = dyn_cast<SymbolRefAttr>(attr))
    return symbol.getLeafReference().str();
  if (auto number = dyn_cast<FloatAttr>(attr))
    return number.getValueAsDouble();
  std::string text;
  llvm::raw_string_ostream os(text);
  attr.print(os);
  return text;
}

/// [symbol-or-size, ...] for a tensor whose leading dim may be dynamic.
static Array shapeJson(RankedTensorType type, StringRef symbol) {
  Array shape;
  for (auto [index, size] : llvm::enumerate(type.getShape())) {
    if (ShapedType::isDynamic(size))
      shape.push_back(index == 0 ? symbol.str() : std::string("P"));
    else
      shape.push_back(size);
  }
  return shape;
}

/// A launch grid: step symbols as names, the other factors as integers.
/// The weight table of a program (the step or the vision tower): one entry
/// per qtf.weight in order, its id recorded in `ids` for the kernel arguments.
static Array weightTable(func::FuncOp program, DenseMap<Value, int64_t> &ids) {
  Array weights;
  for (auto weight : program.getOps<qtf::WeightOp>()) {
    int64_t id = weights.size();
    ids[weight.getResult()] = id;
    Array sources;
    for (Attribute source : weight.getSources())
      sources.push_back(cast<StringAttr>(source).str());
    RankedTensorType type = weight.getResult().getType();
    weights.push_back(Object{{"id", id},
                             {"dtype", dtypeName(type.getElementType())},
                             {"shape", shapeJson(type, "")},
                             {"sources", std::move(sources)}});
  }
  return weights;
}

static Array gridJson(ArrayAttr grid) {
  Array json;
  for (Attribute factor : grid) {
    if (auto symbol = dyn_cast<StringAttr>(factor))
      json.push_back(symbol.str());
    else
      json.push_back(cast<IntegerAttr>(factor).getInt());
  }
  return json;
}

Object qwen::target::variantJson(qkernel::KernelVariantAttr variant) {
  return Object{{key(schema::kKernel), variant.getKernel().str()},
                {key(schema::kGrid), gridJson(variant.getGrid())},
                {key(schema::kBlock), variant.getBlock()},
                {key(schema::kSharedBytes), variant.getShared()}};
}

void qwen::target::writeLaunch(qkernel::LaunchAttr launch, Object &entry) {
  entry[key(schema::kGrid)] = gridJson(launch.getGrid());
  if (!launch.isGpu())
    return;
  entry[key(schema::kBlock)] = launch.getBlock();
  entry[key(schema::kSharedBytes)] = launch.getShared();
  // A variant for decode-only steps (T == B), split-K over the context: it
  // runs grid x splits blocks and the combine kernel merges their partial
  // states (passes/Codegen/GPU/README.md, docs/ARTIFACT.md).
  qkernel::KernelVariantAttr decode = launch.getDecode();
  if (!decode)
    return;
  Object decodeJson = variantJson(decode);
  Object splits{{key(schema::kMaxSplits), launch.getMaxSplits()},
                {key(schema::kPartialFloats), launch.getPartialFloats()}};
  if (qkernel::KernelVariantAttr combine = launch.getCombine())
    splits[key(schema::kCombine)] = variantJson(combine);
  if (launch.getSplitKeys())
    splits[key(schema::kSplitKeys)] = launch.getSplitKeys();
  decodeJson[key(schema::kSplits)] = std::move(splits);
  entry[key(schema::kDecode)] = std::move(decodeJson);
}

/// The "vision" section (docs/ARTIFACT.md): the program @vision (qwen-compile
/// --vision) with its own inputs, weights, buffers and output, in the same
/// formats as the step's; its symbols are T (patches) and R (merged rows).
static llvm::Expected<Object> visionSection(func::FuncOp vision, const ArtifactOptions &options,
                                            bool cuda) {
  auto bufferTable = vision->getAttrOfType<ArrayAttr>("qkernel.buffers");
  if (!bufferTable)
    return makeError("@vision has no planned buffers (run qwen-plan-buffers)");
  Object section{{"config", Object(options.vision)}, {"symbols", Array{"T", "R"}}};
  Array inputs;
  DenseMap<Value, std::string> inputNames;
  for (BlockArgument arg : vision.getArguments()) {
    auto name = vision.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "qtf.input");
    if (!name)
      return makeError("@vision argument " + llvm::Twine(arg.getArgNumber()) +
                       " has no qtf.input name");
    inputNames[arg] = name.str();
    auto type = cast<RankedTensorType>(arg.getType());
    inputs.push_back(Object{{"name", name.str()},
                            {"dtype", dtypeName(type.getElementType())},
                            {"shape", shapeJson(type, getLeadingSymbol(arg))}});
  }
  section["inputs"] = std::move(inputs);
  DenseMap<Value, int64_t> weightIds;
  Array weights = weightTable(vision, weightIds);
  section["weights"] = std::move(weights);
  Array buffers;
  for (auto [id, entry] : llvm::enumerate(bufferTable)) {
    auto dict = cast<DictionaryAttr>(entry);
    auto type = cast<RankedTensorType>(cast<TypeAttr>(dict.get("type")).getValue());
    buffers.push_back(Object{{"id", static_cast<int64_t>(id)},
                             {"dtype", dtypeName(type.getElementType())},
                             {"shape", shapeJson(type, cast<StringAttr>(dict.get("symbol")).getValue())}});
  }
  section["buffers"] = std::move(buffers);
  Array program;
  DenseMap<Value, int64_t> bufferOf;
  for (auto launch : vision.getOps<qkernel::LaunchOp>()) {
    auto resultBuffers = launch.getResultBuffers();
    qkernel::LaunchAttr geometry = launch.getLaunchAttr();
    auto gemm = launch->getAttrOfType<DictionaryAttr>("cublaslt");
    std::string kernel = launch.getKernel().getLeafReference().str();
    if (!resultBuffers || (!geometry && !(cuda && gemm)))
      return makeError("launch of " + kernel + " has no planned buffers or launch geometry");
    Array args;
    for (Value operand : launch.getArgs()) {
      if (inputNames.count(operand))
        args.push_back(Object{{"input", inputNames[operand]}});
      else if (weightIds.count(operand))
        args.push_back(Object{{"weight", weightIds[operand]}});
      else if (bufferOf.count(operand))
        args.push_back(Object{{"buffer", bufferOf[operand]}});
      else
        return makeError("launch of " + kernel + " reads a value the vision program cannot name");
    }
    for (auto [result, buffer] : llvm::zip(launch.getResults(), *resultBuffers)) {
      bufferOf[result] = buffer;
      args.push_back(Object{{"buffer", buffer}});
    }
    Object entry{{"kernel", kernel}, {"args", std::move(args)}};
    if (cuda && gemm) {
      entry["library"] = "cublaslt";
      entry["cublaslt"] = attributeJson(gemm);
    } else {
      writeLaunch(geometry, entry);
    }
    program.push_back(std::move(entry));
  }
  section["program"] = std::move(program);
  auto ret = cast<func::ReturnOp>(vision.getBody().front().getTerminator());
  Value output = ret.getOperand(0);
  if (!bufferOf.count(output))
    return makeError("@vision's output is not produced by a launch");
  auto outputType = cast<RankedTensorType>(output.getType());
  section["output"] = Object{{"buffer", bufferOf[output]},
                             {"kind", "vision_embeddings"},
                             {"dtype", dtypeName(outputType.getElementType())},
                             {"shape", shapeJson(outputType, "R")}};
  return section;
}

llvm::Expected<Object> qwen::target::buildManifest(ModuleOp module,
                                                   const ArtifactOptions &options) {
  auto step = module.lookupSymbol<func::FuncOp>("step");
  if (!step)
    return makeError("module has no @step function");
  auto bufferTable = step->getAttrOfType<ArrayAttr>("qkernel.buffers");
  if (!bufferTable)
    return makeError("@step has no planned buffers (run qwen-plan-buffers)");

  Object manifest;
  manifest["format"] = "qwen-artifact";
  manifest["format_version"] = 1;
  manifest["compiler"] = "qwen-compile 0.1.0";
  Array features;
  for (const std::string &feature : options.requiredFeatures)
    features.push_back(feature);
  const bool cuda = options.target == "cuda";
  if (cuda)
    manifest["target"] = Object{{"kind", "cuda"}, {"arch", options.gpuArch}, {"object", "kernels.ptx"}};
  else
    manifest["target"] = Object{{"kind", "cpu"},
                                {"triple", llvm::sys::getDefaultTargetTriple()},
                                {"cpu", options.cpu},
                                {"features", std::move(features)},
                                {"object", "kernels.so"}};
  // cpu: whether some GEMMs round their f32 activations (the schedule's
  // avx512_bf16_round tiles), so that tests hold the artifact to HF's bf16
  // run's tolerances, as a CUDA artifact.
  if (!cuda) {
    auto rounded = step->getAttrOfType<TypeAttr>(qkernel::kGemmActivationsAttrName);
    (*manifest.getObject("target"))[key(schema::kGemmActivations)] =
        rounded ? dtypeName(rounded.getValue()) : std::string("f32");
  }
  manifest["model"] = Object(options.model);
  Array files;
  for (const CheckpointFile &file : options.checkpointFiles) {
    char hash[17];
    snprintf(hash, sizeof(hash), "%016llx",
             static_cast<unsigned long long>(file.headerHash));
    files.push_back(Object{{"name", file.name},
                           {"size", static_cast<int64_t>(file.size)},
                           {"header_fnv1a64", std::string(hash)}});
  }
  Object checkpoint{{"dir", options.checkpointDir}, {"files", std::move(files)}};
  if (!options.tokenizer.empty())
    checkpoint["tokenizer"] = options.tokenizer;
  manifest["checkpoint"] = std::move(checkpoint);

  // Inputs and the KV cache come from the step's arguments.
  Array inputs;
  DenseMap<Value, std::string> inputNames;
  qtf::KVCacheType cacheType;
  qtf::LinearStateType stateType;
  for (BlockArgument arg : step.getArguments()) {
    if (auto cache = dyn_cast<qtf::KVCacheType>(arg.getType())) {
      cacheType = cache;
      continue;
    }
    if (auto state = dyn_cast<qtf::LinearStateType>(arg.getType())) {
      stateType = state;
      continue;
    }
    auto name = step.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "qtf.input");
    if (!name)
      return makeError("@step argument " + llvm::Twine(arg.getArgNumber()) +
                       " has no qtf.input name");
    inputNames[arg] = name.str();
    auto type = cast<RankedTensorType>(arg.getType());
    Array shape = name.getValue() == "block_table" ? Array{"B", "P"}
                                                   : shapeJson(type, getLeadingSymbol(arg));
    inputs.push_back(Object{{"name", name.str()},
                            {"dtype", dtypeName(type.getElementType())},
                            {"shape", std::move(shape)}});
  }
  if (!cacheType)
    return makeError("@step has no KV cache argument");
  manifest["symbols"] = Array{"T", "B", "P", "R"};
  manifest["inputs"] = std::move(inputs);
  manifest["kv_cache"] = Object{{"num_layers", cacheType.getLayers()},
                                {"num_kv_heads", cacheType.getKvHeads()},
                                {"head_dim", cacheType.getHeadDim()},
                                {"page_size", cacheType.getPageSize()},
                                {"dtype", dtypeName(cacheType.getElementType())}};
  if (stateType)
    manifest["linear_state"] = Object{{"num_layers", stateType.getLayers()},
                                      {"conv_channels", stateType.getConvChannels()},
                                      {"conv_window", stateType.getConvWindow()},
                                      {"conv_dtype", dtypeName(stateType.getElementType())},
                                      {"num_heads", stateType.getHeads()},
                                      {"key_dim", stateType.getKeyDim()},
                                      {"value_dim", stateType.getValueDim()},
                                      {"recurrent_dtype", "f32"}};

  DenseMap<Value, int64_t> weightIds;
  Array weights = weightTable(step, weightIds);
  manifest["weights"] = std::move(weights);

  Array buffers;
  for (auto [id, entry] : llvm::enumerate(bufferTable)) {
    auto dict = cast<DictionaryAttr>(entry);
    auto type = cast<RankedTensorType>(cast<TypeAttr>(dict.get("type")).getValue());
    StringRef symbol = cast<StringAttr>(dict.get("symbol")).getValue();
    buffers.push_back(Object{{"id", static_cast<int64_t>(id)},
                             {"dtype", dtypeName(type.getElementType())},
                             {"shape", shapeJson(type, symbol)}});
  }
  manifest["buffers"] = std::move(buffers);

  Array program;
  DenseMap<Value, int64_t> bufferOf;
  // Generated GPU launches, and how many of them may be programmatic.
  size_t gpuLaunches = 0, programmatic = 0;
  for (auto launch : step.getOps<qkernel::LaunchOp>()) {
    auto resultBuffers = launch.getResultBuffers();
    qkernel::LaunchAttr geometry = launch.getLaunchAttr();
    auto gemm = launch->getAttrOfType<DictionaryAttr>("cublaslt");
    if (!resultBuffers || (!geometry && !(cuda && gemm)))
      return makeError("launch of " + launch.getKernel().getLeafReference().str() +
                       " has no planned buffers or launch geometry");
    if (cuda && !gemm && !geometry.isGpu())
      return makeError("launch of " + launch.getKernel().getLeafReference().str() +
                       " has no GPU block size (a CPU launch in a CUDA artifact)");
    Array args;
    for (Value operand : launch.getArgs()) {
      if (isa<qtf::KVCacheType>(operand.getType())) {
        args.push_back(Object{{"kv", "keys"}});
        args.push_back(Object{{"kv", "values"}});
      } else if (isa<qtf::LinearStateType>(operand.getType())) {
        args.push_back(Object{{"state", "conv"}});
        args.push_back(Object{{"state", "recurrent"}});
      } else if (inputNames.count(operand)) {
        args.push_back(Object{{"input", inputNames[operand]}});
      } else if (weightIds.count(operand)) {
        args.push_back(Object{{"weight", weightIds[operand]}});
      } else if (bufferOf.count(operand)) {
        args.push_back(Object{{"buffer", bufferOf[operand]}});
      } else {
        return makeError("launch of " + launch.getKernel().getLeafReference().str() +
                         " reads a value the program cannot name");
      }
    }
    for (auto [result, buffer] : llvm::zip(launch.getResults(), *resultBuffers)) {
      if (buffer < 0)
        continue;
      bufferOf[result] = buffer;
      args.push_back(Object{{"buffer", buffer}});
    }
    Object entry{{"kernel", launch.getKernel().getLeafReference().str()}, {"args", std::move(args)}};
    if (cuda && gemm) {
      // A cuBLASLt call: the descriptor decided at compile time
      // (passes/Codegen/GPU/README.md), no generated kernel.
      entry["library"] = "cublaslt";
      // Its decode variant (an FP8 GEMM's generated kernel, MatmulLaunch.cpp)
      // is written as the entry's "decode", with the arguments it takes.
      NamedAttrList descriptor(gemm);
      auto decode = dyn_cast_or_null<qkernel::KernelVariantAttr>(descriptor.erase("decode"));
      auto decodeArgs = dyn_cast_or_null<DenseI64ArrayAttr>(descriptor.erase("decode_args"));
      auto decodeMaxRows = dyn_cast_or_null<IntegerAttr>(descriptor.erase("decode_max_rows"));
      entry["cublaslt"] = attributeJson(descriptor.getDictionary(gemm.getContext()));
      if (decode || decodeArgs || decodeMaxRows) {
        if (!decode || !decodeArgs || !decodeMaxRows)
          return makeError("cuBLASLt launch of " + launch.getKernel().getLeafReference().str() +
                           " needs decode, decode_args and decode_max_rows together");
        Object decodeJson = variantJson(decode);
        decodeJson["args"] = Array(decodeArgs.asArrayRef());
        decodeJson["max_rows"] = decodeMaxRows.getInt();
        entry[key(schema::kDecode)] = std::move(decodeJson);
      }
    } else {
      writeLaunch(geometry, entry);
      if (geometry.isGpu()) {
        ++gpuLaunches;
        programmatic += geometry.getProgrammatic();
      }
    }
    program.push_back(std::move(entry));
  }
  manifest["program"] = std::move(program);
  // Programmatic dependent launch is all or nothing (the runtime's stream).
  if (cuda)
    (*manifest.getObject("target"))[key(schema::kProgrammaticLaunch)] =
        gpuLaunches > 0 && programmatic == gpuLaunches;

  auto ret = cast<func::ReturnOp>(step.getBody().front().getTerminator());
  Value logits = ret.getOperand(0);
  if (!bufferOf.count(logits))
    return makeError("@step's logits are not produced by a launch");
  auto logitsType = cast<RankedTensorType>(logits.getType());
  auto outputKind = step.getResultAttrOfType<StringAttr>(0, "qtf.output");
  // The planned buffer's symbol: the kernel bodies are lowered by now.
  StringRef outputSymbol = cast<StringAttr>(cast<DictionaryAttr>(bufferTable[bufferOf[logits]])
                                                .get("symbol"))
                               .getValue();
  manifest["output"] = Object{{"buffer", bufferOf[logits]},
                              {"kind", outputKind ? outputKind.getValue() : "logits"},
                              {"dtype", dtypeName(logitsType.getElementType())},
                              {"shape", shapeJson(logitsType, outputSymbol)}};

  // On-device sampling (passes/Codegen/GPU/README.md): kernels the runtime
  // launches after the program, on the output buffer and an ids array of
  // its own, written as the program's variants.
  if (auto sampler = step->getAttrOfType<DictionaryAttr>(qkernel::kSamplerAttrName); cuda && sampler) {
    auto argmax = sampler.getAs<qkernel::KernelVariantAttr>("argmax");
    auto topk = sampler.getAs<qkernel::KernelVariantAttr>("topk");
    auto count = sampler.getAs<IntegerAttr>("topk_count");
    if (!argmax || !topk || !count)
      return makeError("qkernel.sampler needs argmax and topk kernel variants and a topk_count");
    Object topkJson = variantJson(topk);
    topkJson["count"] = count.getInt();
    manifest["sampler"] = Object{{"argmax", variantJson(argmax)}, {"topk", std::move(topkJson)}};
  }
  if (auto vision = module.lookupSymbol<func::FuncOp>("vision")) {
    llvm::Expected<Object> section = visionSection(vision, options, cuda);
    if (!section)
      return section.takeError();
    manifest["vision"] = std::move(*section);
  }
  return manifest;
}


llvm::Error qwen::target::writeArtifactFolder(
    StringRef outDir, Object manifest,
    const std::function<llvm::Error(StringRef staging)> &writeFiles) {
  std::string staging = (outDir + ".partial").str();
  llvm::sys::fs::remove_directories(staging);
  if (std::error_code ec = llvm::sys::fs::create_directories(staging))
    return makeError("cannot create " + staging + ": " + ec.message());
  if (llvm::Error err = writeFiles(staging))
    return err;
  SmallString<256> manifestPath(staging);
  llvm::sys::path::append(manifestPath, "manifest.json");
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(manifestPath, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return makeError("cannot write " + manifestPath + ": " + ec.message());
    out << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
  }
  llvm::sys::fs::remove_directories(outDir);
  if (std::error_code ec = llvm::sys::fs::rename(staging, outDir))
    return makeError("cannot move the artifact to " + outDir + ": " + ec.message());
  return llvm::Error::success();
}
