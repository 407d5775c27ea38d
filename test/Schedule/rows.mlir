// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda max-threads=64" | FileCheck %s --check-prefix=T64
// RUN: qwen-opt %s --qwen-select-schedule=target=cpu | FileCheck %s --check-prefix=CPU
// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16" | FileCheck %s --check-prefix=CPU16

// The row families and the sampler. On CUDA a block per row (or row chunk):
// vectors of the widest width <= 4 that divides the row and keeps every
// view aligned, and the smallest block of whole warps (up to max-threads)
// that covers the row's vectors; conv gives each thread one channel. On the
// CPU one work item per row in vectors of the register width, and
// `row_widths` for the rows it does not divide (codegen reads both).

!st = !qtf.linear_state<layers = 2, conv_channels = 320, conv_window = 3, heads = 2, key_dim = 16, value_dim = 16, f32>

// The sampler over Qwen3's 151936 logits: argmax 1024 threads of vectors of
// 4; top-k always 1024 threads. Not on the CPU (it samples on the host).
// CUDA-LABEL: func.func @step(
// CUDA-SAME:  qkernel.sampler_schedule = {argmax = #qkernel.schedule<target = cuda, threads = 1024, vector_width = 4>, topk = #qkernel.schedule<target = cuda, threads = 1024, vector_width = 4>}
// CPU-LABEL:  func.func @step(
// CPU-NOT:    sampler_schedule

// The q_norm -> rope chain of Qwen3-0.6B: 128 columns = 32 vectors of 4.
// CUDA-LABEL: func.func @qwen3_0_6b_q_rows(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 32, vector_width = 4>
// T64-LABEL:  func.func @qwen3_0_6b_q_rows(
// T64-SAME:   qkernel.schedule = #qkernel.schedule<target = cuda, threads = 32, vector_width = 4>
// CPU-LABEL:  func.func @qwen3_0_6b_q_rows(
// CPU-SAME:   qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8>

// The input norm of Qwen3-0.6B: 1024 columns = 256 vectors of 4.
// CUDA-LABEL: func.func @qwen3_0_6b_input_norm(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4>
// T64-LABEL:  func.func @qwen3_0_6b_input_norm(
// T64-SAME:   qkernel.schedule = #qkernel.schedule<target = cuda, threads = 64, vector_width = 4>
// CPU16-LABEL: func.func @qwen3_0_6b_input_norm(
// CPU16-SAME: qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16>

// silu_mul of the two halves of a 20-wide row: rows of 10 at offsets 0 and
// 10, in pairs on both targets (the CPU's 8 and 16 divide neither).
// CUDA-LABEL: func.func @odd_silu_mul(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 32, vector_width = 2>
// CPU-LABEL:  func.func @odd_silu_mul(
// CPU-SAME:   qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, row_widths = [10, 2]>
// CPU16-LABEL: func.func @odd_silu_mul(
// CPU16-SAME: qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, row_widths = [10, 2]>

// A view at an odd offset (columns 5..9 of 10) keeps scalar loads on CUDA (vector_width 1,
// the default, is not printed).
// CUDA-LABEL: func.func @odd_offset_add(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 32>
// CPU-LABEL:  func.func @odd_offset_add(
// CPU-SAME:   qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, row_widths = [5, 1]>

// conv over 320 channels: a CUDA thread per channel (320 -> blocks of 512,
// at most max-threads); the CPU a vector of 8 per work item.
// CUDA-LABEL: func.func @conv(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256>
// T64-LABEL:  func.func @conv(
// T64-SAME:   qkernel.schedule = #qkernel.schedule<target = cuda, threads = 64>
// CPU-LABEL:  func.func @conv(
// CPU-SAME:   qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8>

module {
  func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x151936xf32> {
    %w = qtf.weight ["lm_head"] : tensor<151936x64xf32>
    %0 = qkernel.launch @kernels::@lm_head(%x, %w) : (tensor<?x64xf32>, tensor<151936x64xf32>) -> tensor<?x151936xf32>
    return %0 : tensor<?x151936xf32>
  }
  module @kernels {
    func.func @qwen3_0_6b_q_rows(%qkv: tensor<?x4096xf32>, %w: tensor<128xbf16>, %pos: tensor<?xi32>) -> tensor<?x16x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %q, %k, %v = qtf.split %qkv [2048, 1024, 1024] : tensor<?x4096xf32> -> tensor<?x2048xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>
      %q3 = qtf.reshape %q : tensor<?x2048xf32> -> tensor<?x16x128xf32>
      %n = qtf.rms_norm %q3, %w {epsilon = 1.0e-6 : f64} : tensor<?x16x128xf32>, tensor<128xbf16> -> tensor<?x16x128xf32>
      %r = qtf.rope %n, %pos {theta = 1.0e6 : f64, rotary_dim = 128 : i64} : tensor<?x16x128xf32>, tensor<?xi32> -> tensor<?x16x128xf32>
      return %r : tensor<?x16x128xf32>
    }
    func.func @qwen3_0_6b_input_norm(%x: tensor<?x1024xf32>, %w: tensor<1024xbf16>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %n = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x1024xf32>, tensor<1024xbf16> -> tensor<?x1024xf32>
      return %n : tensor<?x1024xf32>
    }
    func.func @odd_silu_mul(%x: tensor<?x20xf32>) -> tensor<?x10xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0:2 = qtf.split %x [10, 10] : tensor<?x20xf32> -> tensor<?x10xf32>, tensor<?x10xf32>
      %1 = qtf.silu_mul %0#0, %0#1 : tensor<?x10xf32>
      return %1 : tensor<?x10xf32>
    }
    func.func @odd_offset_add(%x: tensor<?x10xf32>) -> tensor<?x5xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0:2 = qtf.split %x [5, 5] : tensor<?x10xf32> -> tensor<?x5xf32>, tensor<?x5xf32>
      %1 = qtf.add %0#0, %0#1 : tensor<?x5xf32>
      return %1 : tensor<?x5xf32>
    }
    func.func @conv(%arg0: tensor<?x320xf32>, %arg1: !st, %arg2: tensor<320x4xbf16>, %arg3: tensor<?xi32>, %arg4: tensor<?xi32>) -> (tensor<?x320xf32>, !st) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<conv>} {
      %result, %new_state = qtf.causal_conv1d %arg1[1], %arg0, %arg2, %arg3, %arg4 : !st, tensor<?x320xf32>, tensor<320x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x320xf32>
      return %result, %new_state : tensor<?x320xf32>, !st
    }
    func.func @lm_head(%arg0: tensor<?x64xf32>, %arg1: tensor<151936x64xf32>) -> tensor<?x151936xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x64xf32>, tensor<151936x64xf32> -> tensor<?x151936xf32>
      return %0 : tensor<?x151936xf32>
    }
  }
}
