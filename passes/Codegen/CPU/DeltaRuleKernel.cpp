//===- DeltaRuleKernel.cpp - CPU codegen for the gated delta rule ---------===//
//
// delta_rule: the gated delta rule, one work item per (request, value head)
// on the f32 state S [key_dim][value_dim] held in the request's slot; every
// request's tokens are contiguous and in order in a ragged step. Every token
// takes the recurrent step (the schedule's tile of one token, CpuSchedules.cpp),
// so a token's state and output depend on the tokens before it alone, not on
// how the prompt was cut into steps.
//
// Phases (KernelPhase names, in order; test/Codegen/CPU/delta-rule-phases.mlir):
//   delta_rule.find_run       the request's rows [start, end)
//   delta_rule.token_loop     per token:
//     delta_rule.load_qk        q (scaled), k L2-normalized into scratch rows
//       delta_rule.gates          alpha = e^g, beta
//     per column block of S (a vector of value columns, every key row):
//     delta_rule.state_update   m = S^T k, d = beta (v - alpha m), S = alpha S + k d^T
//     delta_rule.output         o = S^T q stored
// Everything but the walk over S's column blocks is Common/DeltaRule's,
// written once for the CPU and the GPU.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/DeltaRule.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;
using qwen::codegen::KernelPhase;

/// Value columns per column block: up to four of the schedule's vectors,
/// whose fused multiply-add chains over the key rows are independent (one
/// vector's chain would wait on the FMA latency).
static int64_t blockWidth(int64_t valueDim, int64_t vectorWidth) {
  int64_t width = vectorWidth;
  while (width < 4 * vectorWidth && valueDim % (2 * width) == 0)
    width *= 2;
  return width;
}

/// The delta rule of work item `item`: per token of its run, the recurrent
/// step on S in column blocks.
static void emitDeltaRuleItem(KernelEmitter &e, qtf::GatedDeltaRuleOp rule, unsigned output,
                              Value item) {
  codegen::DeltaRuleItem dr(e, rule, output);
  const int64_t dk = dr.sizes.keyDim, dv = dr.sizes.valueDim;
  const int64_t kWidth = e.rowWidth(dk), width = blockWidth(dv, e.rowWidth(dv));
  Value q = e.scratchRow(dk), k = e.scratchRow(dk);
  dr.locate(item);
  Value stateBase = dr.stateOffset();
  dr.loadDecay();
  auto [start, end] = dr.findRun();
  KernelPhase phase(e.builder(), "delta_rule.token_loop");
  e.forLoop(start, end, 1, [&](Value t) {
    codegen::StepScalars scalars = dr.prepareToken(t, q, k, kWidth);
    e.forLoop(e.index(0), e.index(dv), width, [&](Value j) {
      codegen::ColumnBlock s;
      s.column = j, s.width = width, s.rows = dk;
      s.memory = dr.recurrent, s.base = e.addIndex(stateBase, j), s.stride = dv;
      scalars.v = dr.valueColumns(s, t);
      dr.recurrentStep(s, scalars, {q, Value()}, {k, Value()}, t, Value());
    });
  });
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitDeltaRuleKernel(KernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedDeltaRuleOp>(source, "delta_rule");
  if (failed(matched))
    return failure();
  qtf::GatedDeltaRuleOp rule = matched->first;
  const unsigned output = matched->second;
  if (e.schedule().tileSize(0) != 1)
    return source.emitOpError("the CPU delta_rule takes the recurrent step: its schedule needs "
                              "tile = [1]"),
           failure();
  e.createFunction([&](Value item) { emitDeltaRuleItem(e, rule, output, item); });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr("B"),
                                builder.getI64IntegerAttr(codegen::getDeltaRuleSizes(rule).heads)};
}

void qwen::codegen::cpu::populateDeltaRulePatterns(RewritePatternSet &patterns,
                                                   CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::DeltaRule,
                                 emitDeltaRuleKernel, lowering);
}
