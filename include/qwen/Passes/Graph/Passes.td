//===- Passes.td - Graph rewrites ---------------------------*- tablegen -*-===//
#ifndef QWEN_PASSES_GRAPH_PASSES_TD
#define QWEN_PASSES_GRAPH_PASSES_TD

include "mlir/Pass/PassBase.td"

def StackProjectionsPass : Pass<"qwen-graph-stack-projections", "mlir::func::FuncOp"> {
  let summary = "Stacks sibling linears (q|k|v, gate|up) into one wider linear";
  let description = [{
    Linears that read the same input and have weights of one dtype and width
    become a single linear over a weight whose sources are concatenated at
    load time, followed by a `qtf.split` view. One GEMM then reads the input
    once instead of three (or two) times.

    ```mlir
    %q = qtf.linear %x, %wq ...   %k = qtf.linear %x, %wk ...
    // becomes
    %w = qtf.weight ["wq", "wk"] : tensor<..>
    %qk = qtf.linear %x, %w ...
    %q, %k = qtf.split %qk [..]
    ```
  }];
  let dependentDialects = ["::qwen::qtf::QTFDialect"];
}

#endif // QWEN_PASSES_GRAPH_PASSES_TD
