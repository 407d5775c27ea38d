// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule="target=cpu vector-width=16" --qwen-cpu-lower-kernels | FileCheck %s --check-prefix=AVX512

// matmul: the ABI signature, bf16 widened through i16, vector FMAs, a grid of
// ceil(N / 8) work items recorded on the launch.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_matmul{{.*}}grid = [5]
// CHECK:       func.func @qk0_matmul(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64)
// CHECK:         builtin.unrealized_conversion_cast %{{.*}} : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)> to memref<?xi16>
// CHECK:         vector.load %{{.*}} : memref<?xi16>, vector<8xi16>
// CHECK:         arith.shli
// CHECK:         arith.bitcast %{{.*}} : vector<8xi32> to vector<8xf32>
// CHECK:         vector.fma
// CHECK:         vector.reduction <add>
// CHECK:       func.func @qwen_artifact_abi_version() -> i64
// AVX512:      vector.load %{{.*}} : memref<?xi16>, vector<16xi16>
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x64xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<40x64xbf16>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}

// -----

// rows: one work item per (token, head); norm then rope with the f32
// inverse-frequency table as a constant global.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_rows{{.*}}grid = [T, 4]
// CHECK:       memref.global "private" constant @qwen_inv_freq_16_1000000 : memref<8xf32>
// CHECK:       func.func @qk0_rows
// CHECK:         math.rsqrt
// CHECK:         memref.get_global @qwen_inv_freq_16_1000000
// CHECK:         math.cos
// CHECK:         math.sin
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

// attention: one item per (token, GQA group of 2 heads), an online softmax
// over the pages in blocks of keys.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_attention{{.*}}grid = [T, 2]
// CHECK:       func.func @qk0_attention
// CHECK:         scf.for {{.*}} iter_args
// CHECK:           arith.maximumf
// CHECK:           math.exp
// CHECK:           vector.fma
func.func @step(%q: tensor<?x4x16xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x16xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
    return %0 : tensor<?x4x16xf32>
  }
}

