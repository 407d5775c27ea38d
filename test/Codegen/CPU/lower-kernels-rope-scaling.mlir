// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=GPU

// yarn: a compile-time table named by its contents, and cos / sin times the
// attention factor. No request rows are read.
// CHECK:       memref.global "private" constant @qwen_inv_freq_16_yarn_[[$YARN:[0-9a-f]+]] : memref<8xf32>
// CHECK-LABEL: func.func @qk0_rows
// CHECK-NOT:     to %c31
// CHECK:         memref.get_global @qwen_inv_freq_16_yarn_[[$YARN]] : memref<8xf32>
// CHECK:         %[[COS:.*]] = math.cos
// CHECK:         %[[SIN:.*]] = math.sin
// CHECK:         arith.mulf %[[COS]], %[[SCALE:.*]] : f32
// CHECK:         arith.mulf %[[SIN]], %[[SCALE]] : f32
// GPU:         memref.global "private" constant @qwen_inv_freq_16_yarn_{{[0-9a-f]+}} : memref<8xf32>
// GPU:         gpu.func @qk0_rows
// GPU:           math.cos
func.func @step(%q: tensor<?x64xf32> {qtf.input = "tokens"}, %pos: tensor<?xi32> {qtf.input = "positions"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_rows(%q, %pos) : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_rows(%q: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %r = qtf.rope %q3, %pos {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = yarn, factor = 4.0, original_max_positions = 16, attention_factor = 1.1386294361119891>} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
}

// -----

// dynamic: the request's last row in the step by 31 halving steps over
// token_seq, its length L = position + 1, and beyond the original 16 the
// NTK base theta * (factor L / 16 - (factor - 1)) ^ (d / (d - 2)) raised to
// 2i / d per pair; within it the default table.
// CHECK-LABEL: func.func @qk0_rows
// CHECK:         memref.get_global @qwen_inv_freq_16_dynamic_{{[0-9a-f]+}}
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c31 step %{{.*}} iter_args
// CHECK:           arith.shrui %c1073741824
// CHECK:           arith.cmpi ult
// CHECK:           arith.cmpi eq
// CHECK:           scf.yield
// CHECK:         arith.sitofp
// CHECK:         %[[BEYOND:.*]] = arith.cmpf ogt, %{{.*}}, %cst
// CHECK:         math.powf
// CHECK:         scf.for
// CHECK:           math.powf
// CHECK:           arith.select %[[BEYOND]]
// CHECK:           math.cos
// GPU:         gpu.func @qk0_rows
// GPU:           scf.for %{{.*}} = %{{.*}} to %c31 step %{{.*}} iter_args
// GPU:           math.powf
// GPU:           arith.select
func.func @step(%q: tensor<?x64xf32> {qtf.input = "tokens"}, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_rows(%q, %pos, %seq) : (tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_rows(%q: tensor<?x64xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %r = qtf.rope %q3, %pos, %seq {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = dynamic, factor = 4.0, original_max_positions = 16>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
}

// -----

// longrope: the short or the long table by the request's length.
// CHECK:       memref.global "private" constant @qwen_inv_freq_16_longrope_[[$LONG:[0-9a-f]+]]
// CHECK:       memref.global "private" constant @qwen_inv_freq_16_longrope_[[$SHORT:[0-9a-f]+]]
// CHECK-LABEL: func.func @qk0_rows
// CHECK:         memref.get_global @qwen_inv_freq_16_longrope_[[$SHORT]]
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c31
// CHECK:         %[[BEYOND:.*]] = arith.cmpf ogt
// CHECK:         memref.get_global @qwen_inv_freq_16_longrope_[[$LONG]]
// CHECK:         scf.for
// CHECK:           arith.select %[[BEYOND]]
// CHECK-NOT:     math.powf
func.func @step(%q: tensor<?x64xf32> {qtf.input = "tokens"}, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_rows(%q, %pos, %seq) : (tensor<?x64xf32>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_rows(%q: tensor<?x64xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %r = qtf.rope %q3, %pos, %seq {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = longrope, factor = 4.0, original_max_positions = 16, attention_factor = 1.2247448713915889, short_factor = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], long_factor = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5]>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
}
