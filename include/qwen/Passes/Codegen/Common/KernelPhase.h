//===- KernelPhase.h - Named phases of hand-scheduled kernels ---*- C++ -*-===//
//
// The large hand-scheduled kernels (attention, delta rule, experts, top-k)
// are written as named phases, as IREE's ukernels are: each phase is one
// function of the kernel's emitter. A KernelPhase scope makes the phase
// visible in the IR: every op the builder creates while the scope lives
// carries the location `"kernel.phase"(loc)` (a NameLoc wrapping the
// builder's location; nested phases nest). Locations do not change what the
// IR computes, are printed with --mlir-print-debuginfo (inline with
// --mlir-print-local-scope), and survive the conversions down to LLVM, so
// lit tests check the phases of a kernel in order (test/Codegen/*/
// *-phases.mlir) and a profile or a verifier error names the phase.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_KERNELPHASE_H
#define QWEN_PASSES_CODEGEN_COMMON_KERNELPHASE_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace qwen::codegen {

class KernelPhase {
public:
  /// `name` is "kernel.phase", e.g. "attention.online_softmax".
  KernelPhase(mlir::ImplicitLocOpBuilder &b, llvm::StringRef name)
      : b(b), saved(b.getLoc()) {
    b.setLoc(mlir::NameLoc::get(b.getStringAttr(name), saved));
  }
  ~KernelPhase() { b.setLoc(saved); }
  KernelPhase(const KernelPhase &) = delete;
  KernelPhase &operator=(const KernelPhase &) = delete;

private:
  mlir::ImplicitLocOpBuilder &b;
  mlir::Location saved;
};

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_KERNELPHASE_H
