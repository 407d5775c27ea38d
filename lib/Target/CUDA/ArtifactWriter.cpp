//===- ArtifactWriter.cpp - The CUDA artifact: manifest + PTX -------------===//
//
// The GPU codegen serializes every generated kernel into one PTX module
// (gpu.binary, format=isa); the runtime loads it with cuModuleLoadData and
// finds each program entry's kernel by name. GEMMs are cuBLASLt calls whose
// descriptors are in the manifest. Where the CUDA toolkit's ptxas is found,
// the module is also assembled to kernels.cubin, which the runtime loads
// without the driver's JIT compilation (falling back to the PTX for a GPU
// the cubin does not run on).
//
//===----------------------------------------------------------------------===//
#include "qwen/Target/CUDA/ArtifactWriter.h"

#include "qwen/Passes/Codegen/GPU/Passes.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::target;

/// The ptxas to assemble the cubin with: `requested` when given ("none": no
/// cubin), else the first on PATH or in /usr/local/cuda/bin; "" if none.
static std::string findPtxas(llvm::StringRef requested) {
  if (requested == "none")
    return "";
  if (!requested.empty()) {
    llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName(requested);
    return found ? *found : requested.str();
  }
  if (llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName("ptxas"))
    return *found;
  if (llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName("ptxas", {"/usr/local/cuda/bin"}))
    return *found;
  return "";
}

llvm::Error qwen::target::writeCudaArtifact(ModuleOp module, const ArtifactOptions &options,
                                            StringRef outDir) {
  ArtifactOptions cudaOptions = options;
  cudaOptions.target = "cuda";
  llvm::Expected<llvm::json::Object> manifest = buildManifest(module, cudaOptions);
  if (!manifest)
    return manifest.takeError();
  FailureOr<llvm::StringMap<std::string>> kernels = codegen::gpu::getKernelPTX(module);
  if (failed(kernels))
    return makeError("the module has no PTX (run the GPU pipeline to the end)");
  // Every generated kernel the program (with the decode variants of its
  // entries) or the sampler launches must be in the PTX module.
  std::vector<const llvm::json::Object *> launched;
  for (const llvm::json::Value &entry : *manifest->getArray("program")) {
    launched.push_back(entry.getAsObject());
    if (const llvm::json::Object *decode = entry.getAsObject()->getObject("decode")) {
      launched.push_back(decode);
      if (const llvm::json::Object *splits = decode->getObject("splits"))
        launched.push_back(splits->getObject("combine"));
    }
  }
  if (const llvm::json::Object *sampler = manifest->getObject("sampler"))
    for (const auto &method : *sampler)
      launched.push_back(method.second.getAsObject());
  std::string ptx;
  for (const llvm::json::Object *entry : launched) {
    const llvm::json::Object &object = *entry;
    if (object.getString("library"))
      continue;
    std::string name = object.getString("kernel")->str();
    auto found = kernels->find(name);
    if (found == kernels->end())
      return makeError("kernel " + name + " has no PTX entry");
    if (ptx.empty())
      ptx = found->second;
    else if (found->second != ptx)
      return makeError("the generated kernels are spread over several PTX modules");
  }
  std::string ptxas = findPtxas(options.ptxas);
  if (!ptxas.empty())
    (*manifest->getObject("target"))["cubin"] = "kernels.cubin";
  return writeArtifactFolder(outDir, std::move(*manifest), [&](StringRef staging) -> llvm::Error {
    SmallString<256> path(staging);
    llvm::sys::path::append(path, "kernels.ptx");
    {
      std::error_code ec;
      llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_Text);
      if (ec)
        return makeError("cannot write " + path + ": " + ec.message());
      out << ptx;
    }
    if (ptxas.empty())
      return llvm::Error::success();
    SmallString<256> cubin(staging), log(staging);
    llvm::sys::path::append(cubin, "kernels.cubin");
    llvm::sys::path::append(log, "ptxas.log");
    std::string arch = "-arch=" + cudaOptions.gpuArch;
    llvm::StringRef args[] = {ptxas, arch, "-O3", path, "-o", cubin};
    std::optional<llvm::StringRef> redirects[] = {std::nullopt, log.str(), log.str()};
    std::string message;
    int status = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, 0, 0, &message);
    auto output = llvm::MemoryBuffer::getFile(log);
    std::string text = output ? (*output)->getBuffer().str() : "";
    llvm::sys::fs::remove(log);
    if (status != 0)
      return makeError(ptxas + " " + arch + " rejected the generated PTX (a compiler bug)" +
                       (message.empty() ? "" : ": " + message) + (text.empty() ? "" : "\n" + text));
    return llvm::Error::success();
  });
}
