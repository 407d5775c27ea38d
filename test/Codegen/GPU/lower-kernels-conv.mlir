// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// conv (causal_conv1d + SiLU over the 320 conv channels of a 392-wide
// projection row): one thread per channel, blocks of 256 channels, so the
// grid is 2 blocks (threads past channel 319 leave) whatever T is. Each
// thread walks the step's tokens in order with its window (3 f32) carried
// through scf.for: at a request's first token (t == 0 or token_seq[t - 1]
// differs) the window comes from the request's state slot, after its last
// token the newest three inputs go back there. The state is two slots
// (conv windows, recurrent states) and its result has none.
!st = !qtf.linear_state<layers = 2, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_conv
// CHECK-SAME:    launch = #qkernel.launch<grid = [2], block = 256, shared = 0>
// CHECK:       func.func private @qk0_conv({{.*}}) -> (tensor<?x320xf32> {qkernel.symbol = "T"}, !qtf.linear_state
// CHECK-SAME:    qkernel.kind = #qkernel.kind<conv>
// Slots: input, conv windows, recurrent states, weight, token_seq,
// state_slots, result; then T, B, P, R.
// CHECK:       gpu.func @qk0_conv(%{{.*}}: !llvm.ptr, %[[CONV:.*]]: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %[[OUT:.*]]: !llvm.ptr, %[[T:.*]]: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME:    known_block_size = array<i32: 256, 1, 1>
// CHECK-NOT:     workgroup
// CHECK:         %[[INPUT:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[WINDOWS:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[TOKENS:.*]] = arith.index_cast %[[T]] : i64 to index
// CHECK:         %[[CHANNEL:.*]] = arith.addi %{{.*}}, %{{.*}}thread_id_x
// CHECK:         %[[C320:.*]] = arith.constant 320 : index
// CHECK:         %[[INSIDE:.*]] = arith.cmpi ult, %[[CHANNEL]], %[[C320]]
// CHECK:         scf.if %[[INSIDE]] {
// The four bf16 taps of the channel.
// CHECK-COUNT-4:   arith.shli
// CHECK:           scf.for %[[TOKEN:.*]] = %{{.*}} to %[[TOKENS]] step %{{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (f32, f32, f32) {
// Slot base ((slot * 2 + layer 1) * 3 * 320) + channel.
// CHECK:             %[[C960:.*]] = arith.constant 960 : index
// CHECK:             arith.muli %{{.*}}, %[[C960]]
// CHECK:             arith.maxui %[[TOKEN]]
// CHECK:             %[[HISTORY:.*]]:3 = scf.if %{{.*}} -> (f32, f32, f32) {
// CHECK-COUNT-3:       memref.load %[[WINDOWS]]
// CHECK:               scf.yield
// CHECK:             } else {
// CHECK:               scf.yield
// CHECK:             }
// CHECK:             %[[X:.*]] = memref.load %[[INPUT]]
// CHECK:             arith.mulf %{{.*}}, %[[X]]
// CHECK:             math.fma %{{.*}}, %[[HISTORY]]#0
// CHECK:             math.fma %{{.*}}, %[[HISTORY]]#1
// CHECK:             math.fma %{{.*}}, %[[HISTORY]]#2
// CHECK:             arith.negf
// CHECK:             math.exp
// CHECK:             arith.divf
// CHECK:             memref.store
// CHECK:             arith.minui
// CHECK:             scf.if %{{.*}} {
// CHECK:               memref.store %[[HISTORY]]#1, %[[WINDOWS]]
// CHECK:               memref.store %[[HISTORY]]#2, %[[WINDOWS]]
// CHECK:               memref.store %[[X]], %[[WINDOWS]]
// CHECK:             }
// CHECK:             scf.yield %[[HISTORY]]#1, %[[HISTORY]]#2, %[[X]] : f32, f32, f32
// CHECK:         gpu.return
func.func @step(%x: tensor<?x392xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st) -> (tensor<?x320xf32>, !st) {
  %w = qtf.weight ["conv1d.weight"] : tensor<320x4xbf16>
  %0:2 = qkernel.launch @kernels::@qk0_conv(%x, %state, %w, %seq, %slots) : (tensor<?x392xf32>, !st, tensor<320x4xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x320xf32>, !st)
  return %0#0, %0#1 : tensor<?x320xf32>, !st
}
module @kernels {
  func.func @qk0_conv(%arg0: tensor<?x392xf32>, %arg1: !st, %arg2: tensor<320x4xbf16>, %arg3: tensor<?xi32>, %arg4: tensor<?xi32>) -> (tensor<?x320xf32>, !st) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<conv>} {
    %0:4 = qtf.split %arg0 [320, 64, 4, 4] : tensor<?x392xf32> -> tensor<?x320xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>
    %result, %new_state = qtf.causal_conv1d %arg1[1], %0#0, %arg2, %arg3, %arg4 : !st, tensor<?x320xf32>, tensor<320x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x320xf32>
    return %result, %new_state : tensor<?x320xf32>, !st
  }
}
