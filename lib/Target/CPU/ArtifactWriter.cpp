//===- ArtifactWriter.cpp - Serialize a compiled module as an artifact ----===//
//
// The manifest comes from lib/Target/Common; the `@kernels` module becomes
// kernels.so through LLVM's optimizer and x86 backend, linked by the system
// C compiler driver.
//
//===----------------------------------------------------------------------===//
#include "qwen/Target/CPU/ArtifactWriter.h"
#include "qwen/Target/CPU/CpuTarget.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::target;
using llvm::json::Object;

/// Translates the kernels module to LLVM IR, optimizes it for `cpu` and
/// writes a position-independent object file.
static llvm::Error emitObject(ModuleOp kernels, const CpuTarget &cpu, StringRef objectPath) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  kernels->getContext()->appendDialectRegistry(registry);

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(kernels, llvmContext, "qwen_kernels");
  if (!llvmModule)
    return makeError("translation of the kernels module to LLVM IR failed");

  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return makeError("no LLVM target for " + triple.str() + ": " + error);
  const std::string &cpuName = cpu.cpu;
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, cpuName, cpu.featureString, llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return makeError("cannot create an LLVM target machine for cpu " + cpuName);
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());
  for (llvm::Function &function : *llvmModule)
    if (!function.isDeclaration()) {
      function.addFnAttr("target-cpu", cpuName);
      if (!cpu.featureString.empty())
        function.addFnAttr("target-features", cpu.featureString);
      function.addFnAttr("frame-pointer", "none");
    }
  auto optimize = makeOptimizingTransformer(3, 0, machine.get());
  if (llvm::Error err = optimize(llvmModule.get()))
    return err;

  std::error_code ec;
  llvm::raw_fd_ostream out(objectPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return makeError("cannot write " + objectPath + ": " + ec.message());
  llvm::legacy::PassManager passes;
  if (machine->addPassesToEmitFile(passes, out, nullptr, llvm::CodeGenFileType::ObjectFile))
    return makeError("the LLVM target cannot emit object files");
  passes.run(*llvmModule);
  out.flush();
  return llvm::Error::success();
}

/// Links the kernels object into a shared library with the system driver.
static llvm::Error linkSharedObject(StringRef objectPath, StringRef libraryPath) {
  std::string driver;
  for (const char *candidate : {"cc", "clang", "gcc", "clang-22"})
    if (auto found = llvm::sys::findProgramByName(candidate)) {
      driver = *found;
      break;
    }
  if (driver.empty())
    return makeError("no C compiler driver (cc, clang or gcc) found on PATH to "
                     "link kernels.so");
  SmallVector<StringRef> args = {driver, "-shared", "-o", libraryPath, objectPath, "-lm"};
  std::string message;
  int status = llvm::sys::ExecuteAndWait(driver, args, std::nullopt, {}, 0, 0, &message);
  if (status != 0)
    return makeError("linking kernels.so with " + driver + " failed (status " +
                     llvm::Twine(status) + ") " + message);
  return llvm::Error::success();
}

llvm::Error qwen::target::writeCpuArtifact(ModuleOp module, const ArtifactOptions &options,
                                           StringRef outDir) {
  // The manifest names the resolved CPU and the ISA extensions the kernels
  // may use, which the runtime checks before it loads kernels.so.
  llvm::Expected<CpuTarget> cpu = resolveCpuTarget(options.cpu);
  if (!cpu)
    return cpu.takeError();
  ArtifactOptions resolved = options;
  resolved.cpu = cpu->cpu;
  resolved.requiredFeatures = cpu->isaFeatures;
  llvm::Expected<Object> manifest = buildManifest(module, resolved);
  if (!manifest)
    return manifest.takeError();
  ModuleOp kernels = qkernel::getKernelModule(module);
  if (!kernels)
    return makeError("module has no @kernels module");
  return writeArtifactFolder(outDir, std::move(*manifest), [&](StringRef staging) -> llvm::Error {
    SmallString<256> objectPath(staging), libraryPath(staging);
    llvm::sys::path::append(objectPath, "kernels.o");
    llvm::sys::path::append(libraryPath, "kernels.so");
    if (llvm::Error err = emitObject(kernels, *cpu, objectPath))
      return err;
    if (llvm::Error err = linkSharedObject(objectPath, libraryPath))
      return err;
    llvm::sys::fs::remove(objectPath);
    return llvm::Error::success();
  });
}
