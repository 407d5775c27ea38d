// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// gated_norm (gated_rms_norm of the delta-rule output, gate = the z columns
// 320..383 of the projection): one block per (token, head), one warp for a
// head of 16 (4 threads, a vector<4xf32> each). The sum of squares is
// reduced by an xor butterfly; y = x * rsqrt(mean + eps) * w * silu(gate),
// f32, with 1 / sqrt.rn as the other norms.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_gated_norm
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 4], block = 32, shared = 0>
// CHECK:       func.func private @qk0_gated_norm({{.*}}) -> (tensor<?x4x16xf32> {qkernel.symbol = "T"})
// CHECK-SAME:    qkernel.kind = #qkernel.kind<gated_norm>
// CHECK:       gpu.func @qk0_gated_norm(%{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64)
// CHECK-SAME:    known_block_size = array<i32: 32, 1, 1>
// CHECK:         %[[GATE:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[INPUT:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[WEIGHT:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[OUT:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// Gate row: token * 392 + 320 + head * 16.
// CHECK:         %[[C320:.*]] = arith.constant 320 : index
// CHECK:         arith.addi %{{.*}}, %[[C320]]
// CHECK:         scf.for {{.*}} -> (vector<4xf32>)
// CHECK:           vector.load %[[INPUT]]{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           vector.fma
// CHECK:         vector.reduction <add>
// CHECK-COUNT-5: {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         arith.constant 1.600000e+01 : f32
// CHECK:         arith.divf
// CHECK:         llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK:         scf.for
// CHECK:           vector.load %[[INPUT]]
// CHECK:           vector.load %[[WEIGHT]]
// CHECK:           %[[G:.*]] = vector.load %[[GATE]]
// CHECK:           arith.mulf
// CHECK:           arith.mulf
// CHECK:           arith.negf %[[G]]
// CHECK:           math.exp
// CHECK:           arith.divf %[[G]]
// CHECK:           arith.mulf
// CHECK:           vector.store %{{.*}}, %[[OUT]]{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:         gpu.return
func.func @step(%p: tensor<?x392xf32> {qtf.input = "tokens"}, %o: tensor<?x4x16xf32> {qtf.input = "tokens"}) -> tensor<?x4x16xf32> {
  %w = qtf.weight ["norm.weight"] : tensor<16xf32>
  %0 = qkernel.launch @kernels::@qk0_gated_norm(%p, %o, %w) : (tensor<?x392xf32>, tensor<?x4x16xf32>, tensor<16xf32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_gated_norm(%arg0: tensor<?x392xf32>, %arg1: tensor<?x4x16xf32>, %arg2: tensor<16xf32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gated_norm>} {
    %0:4 = qtf.split %arg0 [320, 64, 4, 4] : tensor<?x392xf32> -> tensor<?x320xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>
    %1 = qtf.reshape %0#1 : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %2 = qtf.gated_rms_norm %arg1, %1, %arg2 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<16xf32> -> tensor<?x4x16xf32>
    return %2 : tensor<?x4x16xf32>
  }
}
