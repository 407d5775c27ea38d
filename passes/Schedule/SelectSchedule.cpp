//===- SelectSchedule.cpp - Attach #qkernel.schedule to every kernel ------===//
#include "qwen/Passes/Schedule/Passes.h"
#include "qwen/Passes/Schedule/Schedules.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSwitch.h"

#include <optional>

namespace qwen::schedule {
#define GEN_PASS_DEF_SELECTSCHEDULEPASS
#include "qwen/Passes/Schedule/Passes.h.inc"
} // namespace qwen::schedule

using namespace mlir;
using namespace qwen;

namespace {
struct SelectSchedulePass final
    : qwen::schedule::impl::SelectSchedulePassBase<SelectSchedulePass> {
  using Base::Base;

  /// The CUDA sampler kernels read @step's logits; their schedules sit on
  /// @step (they are not kernels of @kernels).
  void scheduleSampler(ModuleOp top) {
    auto step = top.lookupSymbol<func::FuncOp>("step");
    RankedTensorType logits = codegen::getSampledLogitsType(step);
    if (!logits)
      return;
    auto [argmax, topk] = schedule::selectSamplerSchedules(top.getContext(), logits.getDimSize(1));
    Builder builder(top.getContext());
    step->setAttr(qkernel::kSamplerScheduleAttrName,
                  builder.getDictionaryAttr({builder.getNamedAttr("argmax", argmax),
                                             builder.getNamedAttr("topk", topk)}));
  }

  void runOnOperation() override {
    ModuleOp top = getOperation();
    bool cpu = target == "cpu";
    if (!cpu && target != "cuda") {
      top.emitError("qwen-select-schedule: target must be cpu or cuda, got '") << target << "'";
      return signalPassFailure();
    }
    if (cpu && (vectorWidth < 1 || vectorWidth > 16 || (vectorWidth & (vectorWidth - 1)))) {
      top.emitError("vector-width must be a power of two in [1, 16]");
      return signalPassFailure();
    }
    using Bf16Activations = schedule::CpuScheduleOptions::Bf16Activations;
    std::optional<Bf16Activations> activations =
        llvm::StringSwitch<std::optional<Bf16Activations>>(bf16Activations)
            .Case("auto", Bf16Activations::Auto)
            .Case("off", Bf16Activations::Off)
            .Case("split", Bf16Activations::Split)
            .Case("round", Bf16Activations::Round)
            .Default(std::nullopt);
    if (!activations) {
      top.emitError("bf16-activations must be auto, off, split or round, not '")
          << bf16Activations << "'";
      return signalPassFailure();
    }
    // auto is every target's default; it means off on cuda.
    if (!cpu && (!cpuFeatures.empty() ||
                 (*activations != Bf16Activations::Off && *activations != Bf16Activations::Auto))) {
      top.emitError("cpu-features and bf16-activations are cpu options");
      return signalPassFailure();
    }
    auto isBlock = [](int64_t n) { return n >= 32 && n <= 1024 && n % 32 == 0; };
    if (!cpu && !isBlock(maxThreads)) {
      top.emitError("max-threads must be a multiple of 32 in [32, 1024]");
      return signalPassFailure();
    }
    if (!cpu && !isBlock(attentionThreads)) {
      top.emitError("attention-threads must be a multiple of 32 in [32, 1024]");
      return signalPassFailure();
    }
    if (gpuAttention != "simt" && gpuAttention != "mma") {
      top.emitError("gpu-attention must be simt or mma, not '") << gpuAttention << "'";
      return signalPassFailure();
    }
    if (gpuGemv != "cublaslt" && gpuGemv != "generated") {
      top.emitError("gpu-gemv must be cublaslt or generated, not '") << gpuGemv << "'";
      return signalPassFailure();
    }
    if (cpu && gpuGemv != "cublaslt") {
      top.emitError("gpu-gemv is a cuda option");
      return signalPassFailure();
    }
    if (!cpu)
      scheduleSampler(top);
    ModuleOp kernels = qkernel::getKernelModule(top);
    if (!kernels)
      return;
    schedule::CpuScheduleOptions cpuOptions;
    cpuOptions.vectorWidth = vectorWidth;
    cpuOptions.cpuFeatures.assign(cpuFeatures.begin(), cpuFeatures.end());
    cpuOptions.bf16Activations = *activations;
    if (cpu && *activations == Bf16Activations::Auto)
      cpuOptions.f32Kernels = schedule::selectF32ActivationKernels(top);
    bool rounds = false;
    schedule::GpuScheduleOptions gpuOptions{maxThreads, attentionThreads, gpuAttention == "mma",
                                            gpuGemv == "generated"};
    for (auto func : kernels.getOps<func::FuncOp>()) {
      if (!func->hasAttr(qkernel::kKernelAttrName))
        continue;
      FailureOr<qkernel::ScheduleAttr> chosen =
          cpu ? schedule::selectCpuSchedule(func, cpuOptions)
              : schedule::selectGpuSchedule(func, gpuOptions);
      if (failed(chosen))
        return signalPassFailure();
      func->setAttr(qkernel::kScheduleAttrName, *chosen);
      rounds |= cpu && schedule::roundsF32Activations(func, *chosen);
    }
    if (auto step = top.lookupSymbol<func::FuncOp>("step"); step && rounds)
      step->setAttr(qkernel::kGemmActivationsAttrName,
                    TypeAttr::get(BFloat16Type::get(top.getContext())));
  }
};
} // namespace
