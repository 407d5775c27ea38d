// RUN: qwen-opt %s --qwen-compile-pipeline | FileCheck %s
// RUN: qwen-opt %s --qwen-compile-pipeline="stop-after=fused" | FileCheck %s --check-prefix=FUSED
// RUN: qwen-opt %s --qwen-compile-pipeline="target=cuda stop-after=kernels" | FileCheck %s --check-prefix=CUDA
// RUN: not qwen-opt %s --qwen-compile-pipeline="stop-after=bogus" 2>&1 | FileCheck %s --check-prefix=BAD-STAGE
// RUN: not qwen-opt %s --qwen-compile-pipeline="target=tpu" 2>&1 | FileCheck %s --check-prefix=BAD-TARGET

// The pipeline's options are checked against the stage table.
// BAD-STAGE:  error: unknown stage 'bogus' (graph, stacked, fused, outlined, scheduled, planned, kernels, llvm)
// BAD-TARGET: error: unknown target 'tpu' (cpu, cuda)

// The pipeline qwen-compile runs, on a hand-written graph: embedding, final
// norm and a tied lm_head over the gathered logit rows.
// FUSED:     qkernel.region <embedding>
// FUSED:     qkernel.region <rows>
// FUSED:     qkernel.region <matmul>
// FUSED-NEXT:  qtf.gather_rows
// FUSED-NEXT:  qtf.linear

// The same stages on the GPU: the kernels as gpu.funcs, the lm_head a cuBLASLt GEMM.
// CUDA:       qkernel.launch @kernels::@qk2_matmul({{.*}}cublaslt = {
// CUDA:       gpu.module @qwen_kernels
// CUDA:         gpu.func @qk0_embedding(
// CUDA-NOT:   gpu.binary

// CHECK-LABEL: func.func @step
// CHECK-SAME:    qkernel.buffers = [{symbol = "T", type = tensor<?x32xf32>}, {symbol = "T", type = tensor<?x32xf32>}, {symbol = "R", type = tensor<?x64xf32>}]
// CHECK:         qkernel.launch @kernels::@qk0_embedding{{.*}}grid = [T]{{.*}}result_buffers = array<i64: 0>
// CHECK:         qkernel.launch @kernels::@qk1_rows{{.*}}grid = [T, 1]{{.*}}result_buffers = array<i64: 1>
// CHECK:         qkernel.launch @kernels::@qk2_matmul{{.*}}grid = [8]{{.*}}result_buffers = array<i64: 2>
// CHECK:       module @kernels
// CHECK-DAG:     llvm.func @qk0_embedding(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-DAG:     llvm.func @qk1_rows(
// CHECK-DAG:     llvm.func @qk2_matmul(
// CHECK-DAG:     llvm.func @qwen_artifact_abi_version() -> i64
func.func @step(%tokens: tensor<?xi32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x64xf32> {
  %table = qtf.weight ["model.embed_tokens.weight"] : tensor<64x32xbf16>
  %x = qtf.embedding %table[%tokens] : tensor<64x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
  %w = qtf.weight ["model.norm.weight"] : tensor<32xbf16>
  %n = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x32xf32>, tensor<32xbf16> -> tensor<?x32xf32>
  %sel = qtf.gather_rows %n[%rows] : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %logits = qtf.linear %sel, %table : tensor<?x32xf32>, tensor<64x32xbf16> -> tensor<?x64xf32>
  return %logits : tensor<?x64xf32>
}
