// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// delta_rule with key_dim 64, value_dim 16: one block per (request, value
// head) = grid ["B", 4]. Column j of S belongs to threads 2j and 2j + 1
// (split 2: each holds 32 key rows in registers), 32 threads. The block
// finds the request's run [start, start + count) of tokens (min and sum
// reductions) and reads its 32 rows of S once. A run of more than one token
// takes the chunked WY form in chunks of 32 tokens (the shared chunk buffer
// of 8832 floats: Q, K [32][64 + 1], W [32][64], U [32][16], L, A [32][32],
// beta, gamma), one of one token (decode) the recurrent step: scf.for over
// the run with the 32 rows as iter_args, per token q and k (key head h / 2)
// L2-normalized into shared memory (two block sums), then m = S^T k,
// d = beta (v - alpha m), S = alpha S + k d^T and o = S^T q with fused
// multiply-adds over the thread's rows, the two halves of m and o summed
// with one xor shuffle. Both yield the rows, written back once.
!st = !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_delta_rule
// CHECK-SAME:    launch = #qkernel.launch<grid = [B, 4], block = 32, shared = 35840>
// CHECK:       func.func private @qk0_delta_rule({{.*}}) -> (tensor<?x4x16xf32> {qkernel.symbol = "T"}, !qtf.linear_state
// CHECK-SAME:    qkernel.kind = #qkernel.kind<delta_rule>
// Slots: conv output, projection, conv windows, recurrent states, A_log,
// dt_bias, token_seq, state_slots, result; then T, B, P, R.
// CHECK:       gpu.func @qk0_delta_rule(%{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %[[REC:[^:]+]]: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64)
// CHECK-SAME:    workgroup(%[[Q:[^ ]*]] : memref<64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[K:[^ ]*]] : memref<64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[CH:[^ ]*]] : memref<8832xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:    known_block_size = array<i32: 32, 1, 1>
// CHECK:         llvm.insertvalue %[[REC]],
// CHECK:         %[[STATE:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// The request's run: a strided scan of token_seq, then min / sum reductions.
// CHECK:         scf.for {{.*}} -> (f32, f32)
// CHECK:           arith.minimumf
// CHECK:         gpu.subgroup_reduce minimumf %{{.*}} cluster(size = 2, stride = 16)
// CHECK:         %[[START:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK:         gpu.subgroup_reduce add %{{.*}} cluster(size = 2, stride = 16)
// CHECK:         arith.fptoui
// CHECK:         %[[END:.*]] = arith.addi %[[START]]
// -exp(A_log)
// CHECK:         math.exp
// CHECK:         arith.negf
// CHECK-COUNT-32: memref.load %[[STATE]]
// CHECK:         %[[COUNT:.*]] = arith.subi %[[END]], %[[START]]
// CHECK:         %[[MULTI:.*]] = arith.cmpi ugt, %[[COUNT]]
// CHECK:         %[[FINAL:.*]]:32 = scf.if %[[MULTI]] -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// Chunked: chunks of 32 tokens carrying the 32 rows.
// CHECK:           scf.for %{{.*}} = %[[START]] to %[[END]] step %c32{{(_[0-9]+)?}} iter_args(
// CHECK-SAME:        -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK:             arith.minui
// 1. The warp loads the chunk's tokens: q and k normalized with warp sums
//    (5 shuffles each), v, beta and g; thread 0 then takes gamma = cumsum(g).
// CHECK:             scf.for
// CHECK-COUNT-5:       {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:               llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK-COUNT-5:       {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:               llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK:               math.log1p
// CHECK:             gpu.barrier
// CHECK:             scf.if
// CHECK:               scf.for {{.*}} -> (f32)
// CHECK:                 arith.addf
// CHECK:             gpu.barrier
// 2. k_i.k_j and q_i.k_j for the 32 x 32 pairs, one lane each (32 passes),
//    then L and A with e^(gamma_i - gamma_j).
// CHECK:             scf.for
// CHECK:               scf.for {{.*}} -> (f32, f32)
// CHECK-COUNT-2:         math.fma
// CHECK:               scf.if
// CHECK:                 math.exp
// CHECK:                 memref.store %{{.*}}, %[[CH]]
// CHECK:                 memref.store %{{.*}}, %[[CH]]
// CHECK:             gpu.barrier
// 3. Forward substitution, a thread per column of U (16) and of W (64).
// CHECK:             scf.for %{{.*}} = %{{.*}} to %c80
// CHECK:               scf.if
// CHECK:                 scf.for
// CHECK:                   scf.for {{.*}} -> (f32)
// CHECK:                     arith.negf
// CHECK:                     math.fma
// CHECK:               } else {
// CHECK:                 scf.for
// CHECK:                   math.exp
// CHECK:                   scf.for {{.*}} -> (f32)
// CHECK:                     arith.negf
// CHECK:                     math.fma
// CHECK:             gpu.barrier
// 4. Per token: Vn = U - W S and (e^gamma Q) S over the 32 rows, one
//    shuffle each; the column's first lane adds A Vn and stores o.
// CHECK:             scf.for
// CHECK-COUNT-64:      math.fma
// CHECK:               {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:               {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:               scf.if
// CHECK:                 memref.store %{{.*}}, %[[CH]]
// CHECK:                 scf.for {{.*}} -> (f32)
// CHECK:                 math.fma
// CHECK:                 memref.store
// CHECK:             gpu.barrier
// 5. S = e^gamma_last S + (decayed K)^T Vn.
// CHECK:             math.exp
// CHECK-COUNT-32:    arith.mulf
// CHECK:             scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK-COUNT-32:      math.fma
// CHECK:             gpu.barrier
// CHECK:             scf.yield
// CHECK:           scf.yield
// Decode: the recurrent step.
// CHECK:         } else {
// CHECK:           scf.for %{{.*}} = %[[START]] to %[[END]] step %{{.*}} iter_args(
// CHECK-SAME:        -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// q: rows into shared memory, sum of squares, 1 / sqrt.rn(sum + 1e-6) * scale.
// CHECK:           memref.store %{{.*}}, %[[Q]]
// CHECK:           {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           arith.constant 9.99999997E-7 : f32
// CHECK:           llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK:           arith.constant 1.250000e-01 : f32
// CHECK:           memref.store %{{.*}}, %[[K]]
// CHECK:           llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK:           gpu.barrier
// beta = sigmoid(b), alpha = exp(-exp(A_log) * softplus(a + dt_bias)).
// CHECK:           math.exp
// CHECK:           arith.constant 2.000000e+01 : f32
// CHECK:           arith.cmpf ogt
// CHECK:           math.exp
// CHECK:           math.log1p
// CHECK:           arith.select
// CHECK:           math.exp
// m = S^T k over the thread's 32 rows, then the other half of the column.
// CHECK-COUNT-32:  math.fma
// CHECK:           gpu.subgroup_reduce add %{{.*}} cluster(size = 2) : (f32) -> f32
// CHECK-NEXT:      arith.mulf
// CHECK-NEXT:      arith.subf
// CHECK-NEXT:      arith.mulf
// S = alpha S + k d^T and o = S^T q, two fma per row.
// CHECK-COUNT-64:  math.fma
// CHECK:           {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           scf.if
// CHECK:             memref.store
// CHECK:           gpu.barrier
// CHECK:           scf.yield
// CHECK:         scf.if
// CHECK-COUNT-32:  memref.store %[[FINAL]]#{{[0-9]+}}, %[[STATE]]
// CHECK:         gpu.return
func.func @step(%x: tensor<?x320xf32> {qtf.input = "tokens"}, %p: tensor<?x392xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st) -> (tensor<?x4x16xf32>, !st) {
  %alog = qtf.weight ["A_log"] : tensor<4xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<4xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%x, %p, %state, %alog, %dt, %seq, %slots) : (tensor<?x320xf32>, tensor<?x392xf32>, !st, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x16xf32>, !st)
  return %0#0, %0#1 : tensor<?x4x16xf32>, !st
}
module @kernels {
  func.func @qk0_delta_rule(%arg0: tensor<?x320xf32>, %arg1: tensor<?x392xf32>, %arg2: !st, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x16xf32>, !st) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %0:3 = qtf.split %arg0 [128, 128, 64] : tensor<?x320xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>
    %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x2x64xf32>
    %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x2x64xf32>
    %3 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %4:4 = qtf.split %arg1 [320, 64, 4, 4] : tensor<?x392xf32> -> tensor<?x320xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>
    %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#3, %4#2, %arg3, %arg4, %arg5, %arg6 {scale = 1.250000e-01 : f64} : !st, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x4x16xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %result, %new_state : tensor<?x4x16xf32>, !st
  }
}

// -----

// key_dim 128 with value_dim 256 would need 4 x 256 threads to keep S in
// registers: S stays in the state slot instead, one thread per column (256
// threads), m and the update as scf.for over the key rows reading and
// writing the slot.
!st = !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_delta_rule
// CHECK-SAME:    launch = #qkernel.launch<grid = [B, 2], block = 256, shared = 1056>
// CHECK:       gpu.func @qk0_delta_rule(%{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %[[REC:[^:]+]]: !llvm.ptr,
// CHECK-SAME:    known_block_size = array<i32: 256, 1, 1>
// CHECK:         llvm.insertvalue %[[REC]],
// CHECK:         %[[STATE:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK-NOT:     scf.for {{.*}} -> (f32, f32, f32)
// CHECK:         scf.for
// CHECK:           gpu.barrier
// CHECK:           scf.if
// CHECK:             scf.for {{.*}} -> (f32) {
// CHECK:               memref.load %[[STATE]]
// CHECK:               math.fma
// CHECK:             scf.for {{.*}} -> (f32) {
// CHECK:               memref.load %[[STATE]]
// CHECK:               math.fma
// CHECK:               memref.store %{{.*}}, %[[STATE]]
// CHECK:               math.fma
// CHECK:           gpu.barrier
// CHECK:         gpu.return
func.func @step(%x: tensor<?x768xf32> {qtf.input = "tokens"}, %p: tensor<?x772xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st) -> (tensor<?x2x256xf32>, !st) {
  %alog = qtf.weight ["A_log"] : tensor<2xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<2xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%x, %p, %state, %alog, %dt, %seq, %slots) : (tensor<?x768xf32>, tensor<?x772xf32>, !st, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x2x256xf32>, !st)
  return %0#0, %0#1 : tensor<?x2x256xf32>, !st
}
module @kernels {
  func.func @qk0_delta_rule(%arg0: tensor<?x768xf32>, %arg1: tensor<?x772xf32>, %arg2: !st, %arg3: tensor<2xf32>, %arg4: tensor<2xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x2x256xf32>, !st) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %0:3 = qtf.split %arg0 [128, 128, 512] : tensor<?x768xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x512xf32>
    %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x1x128xf32>
    %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x1x128xf32>
    %3 = qtf.reshape %0#2 : tensor<?x512xf32> -> tensor<?x2x256xf32>
    %4:3 = qtf.split %arg1 [768, 2, 2] : tensor<?x772xf32> -> tensor<?x768xf32>, tensor<?x2xf32>, tensor<?x2xf32>
    %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#2, %4#1, %arg3, %arg4, %arg5, %arg6 {scale = 0.088388347648318440 : f64} : !st, tensor<?x1x128xf32>, tensor<?x1x128xf32>, tensor<?x2x256xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x256xf32>
    return %result, %new_state : tensor<?x2x256xf32>, !st
  }
}
