//===- QKernelOps.td - kernel regions and launches ----------*- tablegen -*-===//
//
// qkernel holds the fusion decisions: `qkernel.region` groups graph ops that
// become one kernel (decided once, for every target), and after outlining
// `qkernel.launch` calls the kernel function that per-target codegen lowers.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_DIALECT_QKERNEL_OPS_TD
#define QWEN_DIALECT_QKERNEL_OPS_TD

include "qwen/Dialect/QKernel/IR/QKernelAttrs.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class QKernel_Op<string mnemonic, list<Trait> traits = []>
    : Op<QKernel_Dialect, mnemonic, traits>;

def QKernel_RegionOp : QKernel_Op<"region", [
    SingleBlockImplicitTerminator<"YieldOp">, RecursiveMemoryEffects]> {
  let summary = "Graph ops fused into one kernel";
  let description = [{
    Captures its operands implicitly from above. `kind` names the codegen
    family every target must provide (`matmul`, `rows`, `attention`,
    `kv_write`, `embedding`, `elementwise`, `router`, `experts`, `conv`,
    `delta_rule`, `gated_norm`); the outlined kernel carries it as
    `qkernel.kind`.

    ```mlir
    %0 = qkernel.region <matmul> -> tensor<?x64xf32> {
      %1 = qtf.linear %x, %w : ...
      %2 = qtf.add %1, %r : tensor<?x64xf32>
      qkernel.yield %2 : tensor<?x64xf32>
    }
    ```
  }];
  let arguments = (ins QKernel_KernelKindAttr:$kind);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$kind (`->` type($results)^)? $body attr-dict";
  let hasVerifier = 1;
}

def QKernel_YieldOp : QKernel_Op<"yield", [Pure, Terminator,
    HasParent<"RegionOp">, ReturnLike]> {
  let summary = "Results of a kernel region";
  let arguments = (ins Variadic<AnyType>:$values);
  let builders = [OpBuilder<(ins), [{ /* nothing */ }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

def QKernel_LaunchOp : QKernel_Op<"launch", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Runs an outlined kernel function on the step's values";
  let description = [{
    `kernel` names a `func.func` inside the nested `@kernels` module. After
    buffer planning, `result_buffers` holds the arena buffer id of each
    tensor result; target codegen records the `launch` geometry.
  }];
  let arguments = (ins SymbolRefAttr:$kernel, Variadic<AnyType>:$args,
                       OptionalAttr<DenseI64ArrayAttr>:$result_buffers,
                       OptionalAttr<QKernel_LaunchAttr>:$launch);
  let results = (outs Variadic<AnyType>:$results);
  let assemblyFormat = [{
    $kernel `(` $args `)` attr-dict `:` functional-type($args, $results)
  }];
}

#endif // QWEN_DIALECT_QKERNEL_OPS_TD
