// RUN: qwen-opt %s --qwen-cpu-lower-kernels -verify-diagnostics
// RUN: not qwen-opt %s --qwen-select-schedule=target=cuda --qwen-cpu-lower-kernels 2>&1 | FileCheck %s --check-prefix=CPU-WRONG
// RUN: not qwen-opt %s --qwen-gpu-lower-kernels 2>&1 | FileCheck %s --check-prefix=CUDA
// RUN: not qwen-opt %s --qwen-select-schedule=target=cpu --qwen-gpu-lower-kernels 2>&1 | FileCheck %s --check-prefix=WRONG

// Codegen reads the schedule and never re-derives it: a kernel that
// qwen-select-schedule did not see is an error, as is one scheduled for
// another target.
// CPU-WRONG: error: 'func.func' op has a schedule for cuda, not for cpu
// CUDA: error: 'func.func' op has no #qkernel.schedule: run qwen-select-schedule first
// WRONG: error: 'func.func' op has a schedule for cpu, not for cuda

func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x64xf32> {
  %w = qtf.weight ["norm"] : tensor<64xbf16>
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %w) : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
module @kernels {
  // expected-error @+1 {{has no #qkernel.schedule: run qwen-select-schedule first}}
  func.func @qk0_rows(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
}
