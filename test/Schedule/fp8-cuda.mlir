// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s

// Matmuls over block-wise FP8 weights on CUDA. Qwen3-8B-FP8's projections
// (128 x 128 blocks, K = 4096 and 12288: multiples of 512) run as
// cuBLASLt's block-scaled FP8 GEMM (tensor_cores); the pack quantizes the
// activations. Their decode steps (decode_*) run the generated kernel
// instead, reading the fp8 weights directly with no pack: 4 warps, a warp
// per output column, 4 activation rows per pass. Other blocks (32 x 48 here), or a K whose 128-wide blocks
// would leave the weight's scale rows misaligned for cuBLASLt (K = 640), get
// the generated kernel: 4 warps, a warp (32 lanes) per output column, 4
// activation rows per pass over the weight row.

// CHECK-LABEL: func.func @qwen3_8b_fp8_qkv(
// CHECK-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true, decode_threads = 128, decode_lanes = 32, decode_tile = [4]>
// CHECK-LABEL: func.func @qwen3_8b_fp8_down(
// CHECK-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true, decode_threads = 128, decode_lanes = 32, decode_tile = [4]>
// CHECK-LABEL: func.func @small_blocks(
// CHECK-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, lanes = 32, tile = [4]>
// CHECK-LABEL: func.func @k_640(
// CHECK-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, lanes = 32, tile = [4]>

module {
  module @kernels {
    func.func @qwen3_8b_fp8_qkv(%x: tensor<?x4096xf32>, %w: tensor<6144x4096xf8E4M3FN>, %s: tensor<48x32xf32>) -> tensor<?x6144xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w scale(%s : tensor<48x32xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x4096xf32>, tensor<6144x4096xf8E4M3FN> -> tensor<?x6144xf32>
      return %0 : tensor<?x6144xf32>
    }
    func.func @qwen3_8b_fp8_down(%x: tensor<?x12288xf32>, %w: tensor<4096x12288xf8E4M3FN>, %s: tensor<32x96xf32>, %r: tensor<?x4096xf32>) -> tensor<?x4096xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w scale(%s : tensor<32x96xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x12288xf32>, tensor<4096x12288xf8E4M3FN> -> tensor<?x4096xf32>
      %1 = qtf.add %0, %r : tensor<?x4096xf32>
      return %1 : tensor<?x4096xf32>
    }
    func.func @small_blocks(%x: tensor<?x64xf32>, %w: tensor<96x64xf8E4M3FN>, %s: tensor<3x2xf32>) -> tensor<?x96xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w scale(%s : tensor<3x2xf32>) {weight_block = array<i64: 32, 48>} : tensor<?x64xf32>, tensor<96x64xf8E4M3FN> -> tensor<?x96xf32>
      return %0 : tensor<?x96xf32>
    }
    func.func @k_640(%x: tensor<?x640xf32>, %w: tensor<256x640xf8E4M3FN>, %s: tensor<2x5xf32>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w scale(%s : tensor<2x5xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x640xf32>, tensor<256x640xf8E4M3FN> -> tensor<?x256xf32>
      return %0 : tensor<?x256xf32>
    }
  }
}
