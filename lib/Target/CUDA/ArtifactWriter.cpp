//===- ArtifactWriter.cpp - The CUDA artifact: manifest + PTX -------------===//
//
// The GPU codegen serializes every generated kernel into one PTX module
// (gpu.binary, format=isa); the runtime loads it with cuModuleLoadData and
// finds each program entry's kernel by name. GEMMs are cuBLASLt calls whose
// descriptors are in the manifest.
//
//===----------------------------------------------------------------------===//
#include "lib/Target/CUDA/ArtifactWriter.h"

#include "passes/Codegen/GPU/Passes.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::target;

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
  // Every generated kernel the program launches must be in the PTX module.
  std::string ptx;
  for (const llvm::json::Value &entry : *manifest->getArray("program")) {
    const llvm::json::Object &object = *entry.getAsObject();
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
  return writeArtifactFolder(outDir, std::move(*manifest), [&](StringRef staging) -> llvm::Error {
    SmallString<256> path(staging);
    llvm::sys::path::append(path, "kernels.ptx");
    std::error_code ec;
    llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return makeError("cannot write " + path + ": " + ec.message());
    out << ptx;
    return llvm::Error::success();
  });
}
