// RUN: qwen-opt %s --qwen-select-schedule | FileCheck %s --check-prefix=CPU8
// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16" | FileCheck %s --check-prefix=CPU16
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-gemv=generated" | FileCheck %s --check-prefix=GEMV

// GEMMs of Qwen3-0.6B (the fused q/k/v projection, 16 + 2 x 8 heads of 128
// over hidden 1024) and of Qwen3-8B (the fused gate/up projection, 2 x 12288
// over hidden 4096, and the down projection back to 4096).
//
// On the CPU a work item owns 8 weight rows; register tiles of 4 tokens x 2
// weight rows, 1 x 1 for a lone token (decode: one sequential weight stream
// per work item), f32 vector FMAs as wide as the registers. Steps of at most
// 4 tokens (batched decode) over rows of at most 2 KiB (1024 bf16: the 0.6B
// q/k/v) take 4 x 1 tiles (decode_tile = [4, 1]); longer rows keep 4 x 2. On CUDA, cuBLASLt on the tensor cores; `threads` bounds the
// pack kernel that gathers or converts the activations.

// CPU8-LABEL: func.func @qwen3_0_6b_qkv(
// CPU8-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 8, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 2], prefill_tokens = 16>
// CPU8-LABEL: func.func @qwen3_8b_gate_up(
// CPU8-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 8, tile = [4, 2], dot = fma, decode_tile = [1, 1], panel = {{[0-9]+}}, prefill_tile = [4, 2], prefill_tokens = 16>
// CPU8-LABEL: func.func @qwen3_8b_down(
// CPU8-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 8, tile = [4, 2], dot = fma, decode_tile = [1, 1], panel = {{[0-9]+}}, prefill_tile = [4, 2], prefill_tokens = 16>

// CPU16-LABEL: func.func @qwen3_0_6b_qkv(
// CPU16-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @qwen3_8b_gate_up(
// CPU16-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @qwen3_8b_down(
// CPU16-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>

// CUDA-LABEL: func.func @qwen3_0_6b_qkv(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true>
// CUDA-LABEL: func.func @qwen3_8b_gate_up(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true>
// CUDA-LABEL: func.func @qwen3_8b_down(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true>

// With gpu-gemv=generated the decode steps (<= 8 rows) run the generated
// GEMV instead of cuBLASLt, as FP8 GEMMs' do (fp8-cuda.mlir): 4 warps, a
// warp per output column, 4 activation rows per pass; the lm_head on the
// gathered logits rows too.
// GEMV-LABEL: func.func @qwen3_0_6b_qkv(
// GEMV-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true, decode_threads = 128, decode_lanes = 32, decode_tile = [4]>
// GEMV-LABEL: func.func @qwen3_8b_gate_up(
// GEMV-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true, decode_threads = 128, decode_lanes = 32, decode_tile = [4]>
// GEMV-LABEL: func.func @qwen3_8b_down(
// GEMV-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true, decode_threads = 128, decode_lanes = 32, decode_tile = [4]>
// GEMV-LABEL: func.func @lm_head_gathered(
// GEMV-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, tensor_cores = true, decode_threads = 128, decode_lanes = 32, decode_tile = [4]>

module {
  module @kernels {
    func.func @qwen3_0_6b_qkv(%x: tensor<?x1024xf32>, %w: tensor<4096x1024xbf16>) -> tensor<?x4096xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x1024xf32>, tensor<4096x1024xbf16> -> tensor<?x4096xf32>
      return %0 : tensor<?x4096xf32>
    }
    func.func @qwen3_8b_gate_up(%x: tensor<?x4096xf32>, %w: tensor<24576x4096xbf16>) -> tensor<?x24576xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x4096xf32>, tensor<24576x4096xbf16> -> tensor<?x24576xf32>
      return %0 : tensor<?x24576xf32>
    }
    func.func @qwen3_8b_down(%x: tensor<?x12288xf32>, %w: tensor<4096x12288xbf16>, %r: tensor<?x4096xf32>) -> tensor<?x4096xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x12288xf32>, tensor<4096x12288xbf16> -> tensor<?x4096xf32>
      %1 = qtf.add %0, %r : tensor<?x4096xf32>
      return %1 : tensor<?x4096xf32>
    }
    func.func @lm_head_gathered(%x: tensor<?x1024xf32>, %rows: tensor<?xi32>, %w: tensor<151936x1024xbf16>) -> tensor<?x151936xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.gather_rows %x[%rows] : tensor<?x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
      %1 = qtf.linear %0, %w : tensor<?x1024xf32>, tensor<151936x1024xbf16> -> tensor<?x151936xf32>
      return %1 : tensor<?x151936xf32>
    }
  }
}
