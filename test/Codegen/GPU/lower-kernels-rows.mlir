// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// rows, q-norm then rope: one block per (token, head), one warp for a head of
// 16 (4 threads load a vector<4xf32> each). The sum of squares is reduced by
// an xor butterfly of gpu.shuffle; the row lives in shared memory because
// rope pairs column i with i + 8, owned by another thread. The launch keeps
// naming @kernels::@qk0_rows, now a declaration; the code is in the
// gpu.module with the NVVM target.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_rows
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 4], block = 32, shared = 64>
// CHECK:       module @kernels attributes {qkernel.target = "gpu"}
// CHECK:         func.func private @qk0_rows(tensor<?x128xf32>, tensor<16xbf16>, tensor<?xi32>) -> (tensor<?x4x16xf32> {qkernel.symbol = "T"})
// CHECK-SAME:      qkernel.gpu_module = "qwen_kernels", qkernel.kernel, qkernel.kind = #qkernel.kind<rows>
// CHECK:       gpu.module @qwen_kernels [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// CHECK:         memref.global "private" constant @qwen_inv_freq_16_1000000 : memref<8xf32>
// CHECK:         gpu.func @qk0_rows(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME:      workgroup(%[[ROW:.*]] : memref<16xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:      kernel attributes {known_block_size = array<i32: 32, 1, 1>}
// CHECK:           %[[BLOCK:.*]] = gpu.block_id x
// CHECK:           %[[THREAD:.*]] = gpu.thread_id x
// CHECK:           builtin.unrealized_conversion_cast %{{.*}} : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)> to memref<?xf32>
// CHECK:           arith.divui %[[BLOCK]]
// CHECK:           arith.remui %[[BLOCK]]
// CHECK:           scf.for
// CHECK:             vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:             vector.store %{{.*}}, %[[ROW]]
// CHECK:           vector.fma
// CHECK:           vector.reduction <add>
// CHECK-COUNT-5:   {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK:           vector.load %{{.*}} {alignment = 8 : i64} : memref<?xi16>, vector<4xi16>
// CHECK:           arith.shli
// CHECK:           gpu.barrier
// CHECK:           memref.get_global @qwen_inv_freq_16_1000000
// CHECK:           math.cos
// CHECK:           math.sin
// CHECK:           gpu.barrier
// CHECK:           vector.store %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           gpu.return
func.func @step(%qkv: tensor<?x128xf32> {qtf.input = "tokens"}, %pos: tensor<?xi32> {qtf.input = "positions"}) -> tensor<?x4x16xf32> {
  %w = qtf.weight ["q_norm"] : tensor<16xbf16>
  %0 = qkernel.launch @kernels::@qk0_rows(%qkv, %w, %pos) : (tensor<?x128xf32>, tensor<16xbf16>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_rows(%qkv: tensor<?x128xf32>, %w: tensor<16xbf16>, %pos: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %q, %k, %v = qtf.split %qkv [64, 32, 32] : tensor<?x128xf32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
    %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %n = qtf.rms_norm %q3, %w {epsilon = 1.0e-6 : f64} : tensor<?x4x16xf32>, tensor<16xbf16> -> tensor<?x4x16xf32>
    %r = qtf.rope %n, %pos {theta = 1.0e6 : f64, rotary_dim = 16 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
}

// -----

// rows, a hidden-size rms_norm of 4096: one block of 256 threads per token.
// Warps reduce with shuffles, then one f32 per warp goes through shared
// memory (8 floats after the 16 KB row) between two barriers.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_rows
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 256, shared = 16416>
// CHECK:       gpu.func @qk0_rows
// CHECK-SAME:    workgroup(%[[ROW:.*]] : memref<4096xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[WARPS:.*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:    known_block_size = array<i32: 256, 1, 1>
// CHECK:         %[[STEP:.*]] = arith.constant 1024 : index
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STEP]]
// CHECK-COUNT-5: {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         scf.if
// CHECK:           memref.store %{{.*}}, %[[WARPS]]
// CHECK:         gpu.barrier
// CHECK-COUNT-8: memref.load %[[WARPS]]
// CHECK:         gpu.barrier
// CHECK:         arith.divf
// CHECK-NOT:     math.rsqrt
// CHECK:         llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
func.func @step(%x: tensor<?x4096xf32> {qtf.input = "tokens"}) -> tensor<?x4096xf32> {
  %w = qtf.weight ["norm"] : tensor<4096xbf16>
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %w) : (tensor<?x4096xf32>, tensor<4096xbf16>) -> tensor<?x4096xf32>
  return %0 : tensor<?x4096xf32>
}
module @kernels {
  func.func @qk0_rows(%x: tensor<?x4096xf32>, %w: tensor<4096xbf16>) -> tensor<?x4096xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x4096xf32>, tensor<4096xbf16> -> tensor<?x4096xf32>
    return %0 : tensor<?x4096xf32>
  }
}

// -----

// rows with interleaved MRoPE (Qwen3.5: partial rotary 8 of 32, sections
// [2, 1, 1]): positions are [T, 3] (temporal, height, width); every thread
// loads the token's three, and frequency i takes H if i % 3 == 1 and
// i < 3 * 1, W if i % 3 == 2 and i < 3 * 1, else T. Columns 8.. pass through.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_rows
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 2], block = 32,
// CHECK:       gpu.func @qk0_rows
// CHECK:         llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK:         gpu.barrier
// CHECK:         memref.get_global @qwen_inv_freq_8_10000000 : memref<4xf32>
// CHECK:         %[[C3:.*]] = arith.constant 3 : index
// CHECK:         %[[ROW:.*]] = arith.muli %{{.*}}, %[[C3]]
// CHECK:         %[[C0:.*]] = arith.constant 0 : index
// CHECK:         arith.addi %[[ROW]], %[[C0]]
// CHECK:         %[[T:.*]] = arith.sitofp
// CHECK:         %[[H:.*]] = arith.sitofp
// CHECK:         %[[W:.*]] = arith.sitofp
// CHECK:         scf.for %[[I:.*]] = %{{.*}}thread_id_x to
// CHECK:           %[[PHASE:.*]] = arith.remui %[[I]]
// CHECK:           %[[IS_H:.*]] = arith.cmpi eq, %[[PHASE]]
// CHECK:           %[[IN_H:.*]] = arith.cmpi ult, %[[I]]
// CHECK:           %[[TAKE_H:.*]] = arith.andi %[[IS_H]], %[[IN_H]]
// CHECK:           %[[TAKE_W:.*]] = arith.andi
// CHECK:           %[[TW:.*]] = arith.select %[[TAKE_W]], %[[W]], %[[T]] : f32
// CHECK:           %[[P:.*]] = arith.select %[[TAKE_H]], %[[H]], %[[TW]] : f32
// CHECK:           arith.mulf %[[P]]
// CHECK:           math.cos
// CHECK:           math.sin
// CHECK:         gpu.barrier
func.func @step(%qkv: tensor<?x192xf32> {qtf.input = "tokens"}, %pos: tensor<?x3xi32> {qtf.input = "mrope_positions"}) -> tensor<?x2x32xf32> {
  %w = qtf.weight ["q_norm"] : tensor<32xbf16>
  %0 = qkernel.launch @kernels::@qk0_rows(%qkv, %w, %pos) : (tensor<?x192xf32>, tensor<32xbf16>, tensor<?x3xi32>) -> tensor<?x2x32xf32>
  return %0 : tensor<?x2x32xf32>
}
module @kernels {
  func.func @qk0_rows(%arg0: tensor<?x192xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?x3xi32>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0:4 = qtf.split %arg0 [64, 64, 32, 32] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
    %1 = qtf.reshape %0#0 : tensor<?x64xf32> -> tensor<?x2x32xf32>
    %2 = qtf.rms_norm %1, %arg1 {epsilon = 9.9999999999999995E-7 : f64, zero_centered} : tensor<?x2x32xf32>, tensor<32xbf16> -> tensor<?x2x32xf32>
    %3 = qtf.rope %2, %arg2 {mrope_section = array<i64: 2, 1, 1>, rotary_dim = 8 : i64, theta = 1.000000e+07 : f64} : tensor<?x2x32xf32>, tensor<?x3xi32> -> tensor<?x2x32xf32>
    return %3 : tensor<?x2x32xf32>
  }
}
