//===- CpuTarget.cpp - native / portable / named CPU targets --------------===//
#include "qwen/Target/CPU/CpuTarget.h"

#include "qwen_rt/cpu_features.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"
#include "llvm/TargetParser/X86TargetParser.h"

#include <algorithm>
#include <memory>

using namespace qwen::target;

bool CpuTarget::has(llvm::StringRef feature) const {
  return std::find(isaFeatures.begin(), isaFeatures.end(), feature) != isaFeatures.end();
}

int64_t CpuTarget::preferredVectorWidth() const { return has("avx512f") ? 16 : 8; }

llvm::Expected<CpuTarget> qwen::target::resolveCpuTarget(llvm::StringRef request) {
  llvm::InitializeNativeTarget();
  CpuTarget result;
  if (request == "native") {
    result.cpu = llvm::sys::getHostCPUName().str();
    // The host's own feature list, not the CPU name's defaults: a virtual
    // machine may hide extensions its CPU model has.
    std::string features;
    for (const auto &entry : llvm::sys::getHostCPUFeatures())
      features += (features.empty() ? "" : ",") + std::string(entry.second ? "+" : "-") +
                  entry.first().str();
    result.featureString = features;
  } else {
    result.cpu = request == "portable" ? kPortableCpu : request.str();
  }

  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError("no LLVM target for " + triple.str() + ": " + error);
  std::unique_ptr<llvm::MCSubtargetInfo> subtarget;
  if (!triple.isX86() || llvm::X86::parseArchX86(result.cpu) != llvm::X86::CK_None)
    subtarget.reset(target->createMCSubtargetInfo(triple, result.cpu, result.featureString));
  if (!subtarget || !subtarget->isCPUStringValid(result.cpu))
    return llvm::createStringError("unknown --cpu '" + request.str() +
                                   "' (native, portable, or an LLVM CPU name such as "
                                   "x86-64-v3, x86-64-v4, znver4, sapphirerapids)");
  for (const char *feature : qwen::rt::kCheckableCpuFeatures)
    if (subtarget->checkFeatures(std::string("+") + feature))
      result.isaFeatures.push_back(feature);
  return result;
}
