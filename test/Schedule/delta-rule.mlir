// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: qwen-opt %s --qwen-select-schedule=target=cpu | FileCheck %s --check-prefix=CPU

// Gated delta rule on CUDA, `lanes` threads per value column, each keeping at
// most 32 key rows of the state in registers (a block of at most 512);
// prefill in chunks of tile[0] tokens, the largest of 64 / 32 / 16 / 8 whose
// shared chunk buffer fits. Qwen3.5 (key_dim = value_dim = 128): 4 lanes, 512
// threads, chunks of 16. key_dim 64: 2 lanes, chunks of 32. key_dim 128 x
// value_dim 256 would need 1024 threads: the state stays in global memory
// (lanes = 0, no chunks), one thread per column.

// CUDA-LABEL: func.func @qwen35_delta_rule(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 512, lanes = 4, tile = [16]>
// CUDA-LABEL: func.func @key_dim_64(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 32, lanes = 2, tile = [32]>
// CUDA-LABEL: func.func @state_in_memory(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256>

// CPU-LABEL: func.func @qwen35_delta_rule(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [1]>
// CPU-LABEL: func.func @key_dim_64(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [1]>
// CPU-LABEL: func.func @state_in_memory(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [1]>

module {
  module @kernels {
    func.func @qwen35_delta_rule(%q: tensor<?x16x128xf32>, %k: tensor<?x16x128xf32>, %v: tensor<?x32x128xf32>, %b: tensor<?x32xf32>, %a: tensor<?x32xf32>, %state: !qtf.linear_state<layers = 1, conv_channels = 8192, conv_window = 3, heads = 32, key_dim = 128, value_dim = 128, f32>, %alog: tensor<32xf32>, %dt: tensor<32xf32>, %seq: tensor<?xi32>, %slots: tensor<?xi32>) -> (tensor<?x32x128xf32>, !qtf.linear_state<layers = 1, conv_channels = 8192, conv_window = 3, heads = 32, key_dim = 128, value_dim = 128, f32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %o, %s = qtf.gated_delta_rule %state[0], %q, %k, %v, %b, %a, %alog, %dt, %seq, %slots {scale = 0.125 : f64} : !qtf.linear_state<layers = 1, conv_channels = 8192, conv_window = 3, heads = 32, key_dim = 128, value_dim = 128, f32>, tensor<?x16x128xf32>, tensor<?x16x128xf32>, tensor<?x32x128xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x32x128xf32>
      return %o, %s : tensor<?x32x128xf32>, !qtf.linear_state<layers = 1, conv_channels = 8192, conv_window = 3, heads = 32, key_dim = 128, value_dim = 128, f32>
    }
    func.func @key_dim_64(%q: tensor<?x2x64xf32>, %k: tensor<?x2x64xf32>, %v: tensor<?x4x16xf32>, %b: tensor<?x4xf32>, %a: tensor<?x4xf32>, %state: !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, %alog: tensor<4xf32>, %dt: tensor<4xf32>, %seq: tensor<?xi32>, %slots: tensor<?xi32>) -> (tensor<?x4x16xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %o, %s = qtf.gated_delta_rule %state[0], %q, %k, %v, %b, %a, %alog, %dt, %seq, %slots {scale = 0.125 : f64} : !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x4x16xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
      return %o, %s : tensor<?x4x16xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
    }
    func.func @state_in_memory(%q: tensor<?x1x128xf32>, %k: tensor<?x1x128xf32>, %v: tensor<?x2x256xf32>, %b: tensor<?x2xf32>, %a: tensor<?x2xf32>, %state: !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>, %alog: tensor<2xf32>, %dt: tensor<2xf32>, %seq: tensor<?xi32>, %slots: tensor<?xi32>) -> (tensor<?x2x256xf32>, !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %o, %s = qtf.gated_delta_rule %state[0], %q, %k, %v, %b, %a, %alog, %dt, %seq, %slots {scale = 0.125 : f64} : !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>, tensor<?x1x128xf32>, tensor<?x1x128xf32>, tensor<?x2x256xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x256xf32>
      return %o, %s : tensor<?x2x256xf32>, !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>
    }
  }
}
