// Numerics of the chunked (prefill) delta rule on the SIMT emulator against
// the CPU codegen (simt-numerics.test explains the harness), on steps whose
// runs are long: one request of 67 tokens (chunks of 16: four full chunks and
// a tail of 3 for key / value heads of 128; two chunks of 32 and a tail of 3
// otherwise), and a ragged step of a decode token, a 70-token prefill and
// another decode token (the decode runs take the recurrent step, the prefill
// the chunked form). Three state geometries: key = value dim 128 (4 lanes
// per column, 512 threads, chunks of 16), key 64 / value 16 (2 lanes per
// column, 32 threads, chunks of 32) and key = value 32 (1 lane per column:
// the CPU's accumulation order). Every output and state value either side
// wrote agrees within rel 1e-6 (the GPU chunks are shorter than the CPU's 64
// tokens: the same math in another rounding order).
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=GEOMETRY
// RUN: rm -rf %t && mkdir -p %t
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | qwen-opt --pass-pipeline='builtin.module(gpu.module(qwen-gpu-expand-subgroup-reduce,canonicalize,cse))' > %t/canon.mlir
// RUN: %python %S/simt/simt.py lower %t/canon.mlir %t
// RUN: qwen-opt %t/emu.mlir --qwen-cpu-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t/emu.ll
// RUN: clang -O1 -shared -fPIC -Wno-override-module %t/emu.ll %S/simt/simt_runtime.c %t/wrappers.c -o %t/emu.so -lm -lpthread
// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels --qwen-cpu-lower-to-llvm > %t/cpu_full.mlir
// RUN: %python %S/simt/simt.py module kernels < %t/cpu_full.mlir | mlir-translate --mlir-to-llvmir > %t/cpu.ll
// RUN: clang -O1 -shared -fPIC -Wno-override-module %t/cpu.ll -o %t/cpu.so -lm
// RUN: %python %S/simt/simt.py check %s %t 67 | FileCheck %s --check-prefix=PREFILL
// RUN: %python %S/simt/simt.py check %s %t 1,70,1 | FileCheck %s --check-prefix=RAGGED

// GEOMETRY: qkernel.launch @kernels::@qk0_delta_rule
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [B, 4], block = 512, shared = 36288>
// GEOMETRY: qkernel.launch @kernels::@qk1_delta_rule
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [B, 4], block = 32, shared = 35840>
// GEOMETRY: qkernel.launch @kernels::@qk2_delta_rule
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [B, 2], block = 32, shared = 25344>

// 67 x 4 x 128 outputs and 4 heads x 128 x 128 state values of one slot.
// PREFILL: qk0_delta_rule       rel {{.*}} (99840 written)
// PREFILL: qk1_delta_rule       rel {{.*}} (8384 written)
// PREFILL: qk2_delta_rule       rel {{.*}} (6336 written)
// PREFILL: PASS
// 72 tokens and three slots.
// RAGGED: qk0_delta_rule       rel {{.*}} (233472 written)
// RAGGED: qk1_delta_rule       rel {{.*}} (16896 written)
// RAGGED: qk2_delta_rule       rel {{.*}} (10752 written)
// RAGGED: PASS

!sa = !qtf.linear_state<layers = 1, conv_channels = 1024, conv_window = 3, heads = 4, key_dim = 128, value_dim = 128, f32>
!sb = !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
!sc = !qtf.linear_state<layers = 1, conv_channels = 128, conv_window = 3, heads = 2, key_dim = 32, value_dim = 32, f32>
module {
  func.func @step(%arg0: tensor<?x1024xf32> {qtf.input = "tokens"}, %arg1: tensor<?x8xf32> {qtf.input = "tokens"}, %arg2: tensor<?x320xf32> {qtf.input = "tokens"}, %arg3: tensor<?x8xf32> {qtf.input = "tokens"}, %arg4: tensor<?x128xf32> {qtf.input = "tokens"}, %arg5: tensor<?x4xf32> {qtf.input = "tokens"}, %arg6: tensor<?xi32> {qtf.input = "token_seq"}, %arg7: tensor<?xi32> {qtf.input = "state_slots"}, %arg8: !sa, %arg9: !sb, %arg10: !sc) -> (tensor<?x4x128xf32>, tensor<?x4x16xf32>, tensor<?x2x32xf32>, !sa, !sb, !sc) {
    %0 = qtf.weight ["model.layers.0.linear_attn.A_log"] : tensor<4xf32>
    %1 = qtf.weight ["model.layers.0.linear_attn.dt_bias"] : tensor<4xf32>
    %2:2 = qkernel.launch @kernels::@qk0_delta_rule(%arg0, %arg1, %arg8, %0, %1, %arg6, %arg7) : (tensor<?x1024xf32>, tensor<?x8xf32>, !sa, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x128xf32>, !sa)
    %3 = qtf.weight ["model.layers.1.linear_attn.A_log"] : tensor<4xf32>
    %4 = qtf.weight ["model.layers.1.linear_attn.dt_bias"] : tensor<4xf32>
    %5:2 = qkernel.launch @kernels::@qk1_delta_rule(%arg2, %arg3, %arg9, %3, %4, %arg6, %arg7) : (tensor<?x320xf32>, tensor<?x8xf32>, !sb, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x16xf32>, !sb)
    %6 = qtf.weight ["model.layers.2.linear_attn.A_log"] : tensor<2xf32>
    %7 = qtf.weight ["model.layers.2.linear_attn.dt_bias"] : tensor<2xf32>
    %8:2 = qkernel.launch @kernels::@qk2_delta_rule(%arg4, %arg5, %arg10, %6, %7, %arg6, %arg7) : (tensor<?x128xf32>, tensor<?x4xf32>, !sc, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x2x32xf32>, !sc)
    return %2#0, %5#0, %8#0, %2#1, %5#1, %8#1 : tensor<?x4x128xf32>, tensor<?x4x16xf32>, tensor<?x2x32xf32>, !sa, !sb, !sc
  }
  module @kernels {
    func.func @qk0_delta_rule(%arg0: tensor<?x1024xf32>, %arg1: tensor<?x8xf32>, %arg2: !sa, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x128xf32>, !sa) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %0:3 = qtf.split %arg0 [256, 256, 512] : tensor<?x1024xf32> -> tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x512xf32>
      %1 = qtf.reshape %0#0 : tensor<?x256xf32> -> tensor<?x2x128xf32>
      %2 = qtf.reshape %0#1 : tensor<?x256xf32> -> tensor<?x2x128xf32>
      %3 = qtf.reshape %0#2 : tensor<?x512xf32> -> tensor<?x4x128xf32>
      %4:2 = qtf.split %arg1 [4, 4] : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xf32>
      %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#1, %4#0, %arg3, %arg4, %arg5, %arg6 {scale = 0.088388347648318440 : f64} : !sa, tensor<?x2x128xf32>, tensor<?x2x128xf32>, tensor<?x4x128xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x128xf32>
      return %result, %new_state : tensor<?x4x128xf32>, !sa
    }
    func.func @qk1_delta_rule(%arg0: tensor<?x320xf32>, %arg1: tensor<?x8xf32>, %arg2: !sb, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x16xf32>, !sb) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %0:3 = qtf.split %arg0 [128, 128, 64] : tensor<?x320xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x2x64xf32>
      %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x2x64xf32>
      %3 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x4x16xf32>
      %4:2 = qtf.split %arg1 [4, 4] : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xf32>
      %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#1, %4#0, %arg3, %arg4, %arg5, %arg6 {scale = 1.250000e-01 : f64} : !sb, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x4x16xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
      return %result, %new_state : tensor<?x4x16xf32>, !sb
    }
    func.func @qk2_delta_rule(%arg0: tensor<?x128xf32>, %arg1: tensor<?x4xf32>, %arg2: !sc, %arg3: tensor<2xf32>, %arg4: tensor<2xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x2x32xf32>, !sc) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %0:3 = qtf.split %arg0 [32, 32, 64] : tensor<?x128xf32> -> tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#0 : tensor<?x32xf32> -> tensor<?x1x32xf32>
      %2 = qtf.reshape %0#1 : tensor<?x32xf32> -> tensor<?x1x32xf32>
      %3 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x2x32xf32>
      %4:2 = qtf.split %arg1 [2, 2] : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xf32>
      %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#1, %4#0, %arg3, %arg4, %arg5, %arg6 {scale = 0.17677669529663687 : f64} : !sc, tensor<?x1x32xf32>, tensor<?x1x32xf32>, tensor<?x2x32xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x32xf32>
      return %result, %new_state : tensor<?x2x32xf32>, !sc
    }
  }
}
