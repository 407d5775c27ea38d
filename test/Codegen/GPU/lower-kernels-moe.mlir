// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// router over 40 experts (a view of the first 40 columns of a 57-wide row),
// top 2, renormalized: one warp per token. Lane l owns experts l and l + 32
// (the second only for l < 8; the others get -inf logits, probability -3);
// max and sum by xor shuffles, then per choice a local argmax (strict >:
// the lowest id wins ties) and a warp argmax over (p, id) pairs, ids as
// exact f32. Lane 0 writes the i32 id, and the weights after renormalizing.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_router
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 32, shared = 0>
// CHECK:       func.func private @qk0_router(tensor<?x57xf32>) -> (tensor<?x2xi32> {qkernel.symbol = "T"}, tensor<?x2xf32> {qkernel.symbol = "T"})
// CHECK-SAME:    qkernel.kind = #qkernel.kind<router>
// CHECK:       gpu.func @qk0_router(%{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: i64
// CHECK-SAME:    known_block_size = array<i32: 32, 1, 1>
// CHECK:         %[[IDS:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xi32>
// CHECK:         %[[WEIGHTS:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[C40:.*]] = arith.constant 40 : index
// CHECK:         arith.cmpi ult, %{{.*}}, %[[C40]]
// CHECK:         %[[C39:.*]] = arith.constant 39 : index
// CHECK:         arith.minui %{{.*}}, %[[C39]]
// CHECK:         arith.maximumf
// CHECK-COUNT-5: {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         math.exp
// CHECK:         math.exp
// CHECK-COUNT-5: {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         arith.divf
// First choice: 5 rounds of two shuffles, greater or (equal and lower id).
// CHECK:         arith.cmpf ogt
// CHECK:         arith.cmpf ogt
// CHECK-COUNT-2: {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         arith.cmpf ogt
// CHECK:         arith.cmpf oeq
// CHECK:         arith.cmpf olt
// CHECK:         arith.andi
// CHECK:         arith.ori
// CHECK:         %[[ID0:.*]] = arith.fptosi %{{.*}} : f32 to i32
// CHECK:         scf.if
// CHECK-NEXT:      memref.store %[[ID0]], %[[IDS]]
// CHECK-NEXT:    }
// CHECK:         arith.fptosi %{{.*}} : f32 to i32
// CHECK:         scf.if
// CHECK-NEXT:      memref.store %{{.*}}, %[[IDS]]
// CHECK-NEXT:    }
// Renormalization: 1 / (w0 + w1), lane 0 writes both weights.
// CHECK:         arith.divf
// CHECK:         scf.if
// CHECK:           arith.mulf
// CHECK:           memref.store %{{.*}}, %[[WEIGHTS]]
// CHECK:           arith.mulf
// CHECK:           memref.store %{{.*}}, %[[WEIGHTS]]
// CHECK:         gpu.return
func.func @step(%l: tensor<?x57xf32> {qtf.input = "tokens"}) -> (tensor<?x2xi32>, tensor<?x2xf32>) {
  %0:2 = qkernel.launch @kernels::@qk0_router(%l) : (tensor<?x57xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %0#0, %0#1 : tensor<?x2xi32>, tensor<?x2xf32>
}
module @kernels {
  func.func @qk0_router(%arg0: tensor<?x57xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
    %0:4 = qtf.split %arg0 [40, 8, 8, 1] : tensor<?x57xf32> -> tensor<?x40xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x1xf32>
    %ids, %weights = qtf.moe_router %0#0 {normalize, top_k = 2 : i64} : tensor<?x40xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
    return %ids, %weights : tensor<?x2xi32>, tensor<?x2xf32>
  }
}

// -----

// Without renormalization each weight is stored as it is chosen.
// CHECK-LABEL: func.func @step
// CHECK:       gpu.func @qk0_router
// CHECK:         scf.if
// CHECK-NEXT:      memref.store %{{.*}} : memref<?xi32>
// CHECK-NEXT:      memref.store %{{.*}} : memref<?xf32>
// CHECK-NEXT:    }
// CHECK:         scf.if
// CHECK-NEXT:      memref.store %{{.*}} : memref<?xi32>
// CHECK-NEXT:      memref.store %{{.*}} : memref<?xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:    gpu.return
func.func @step(%l: tensor<?x8xf32> {qtf.input = "tokens"}) -> (tensor<?x2xi32>, tensor<?x2xf32>) {
  %0:2 = qkernel.launch @kernels::@qk0_router(%l) : (tensor<?x8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %0#0, %0#1 : tensor<?x2xi32>, tensor<?x2xf32>
}
module @kernels {
  func.func @qk0_router(%arg0: tensor<?x8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
    %ids, %weights = qtf.moe_router %arg0 {top_k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
    return %ids, %weights : tensor<?x2xi32>, tensor<?x2xf32>
  }
}

// -----

// experts, grouped by expert: grid [8, 8] (block b: expert b / 8, part
// b % 8), 256 threads, slot blocks of 8. Shared: x [8, 32], h [8, 16], the
// slot queue (8 + 256) and 8 warp counts, (256 + 128 + 264 + 8) * 4 bytes.
// The scan walks the T * 2 slots 256 at a time: ids loaded, a 5-step xor
// warp prefix, warp counts to shared memory, matches queued; each full
// block of 8 whose number is this part's (q % 8) stages its 8 x rows, computes
// gate / up rows (e * 32 + n, 16 rows further) of [E * 32, 32] bf16 for all 8
// slots at once (16 accumulators, one load of each weight vector), h in shared
// memory, then the down rows (8 accumulators), weighted, stored per valid slot.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_experts
// CHECK-SAME:    launch = #qkernel.launch<grid = [8, 8], block = 256, shared = 2624>
// CHECK:       gpu.func @qk0_experts
// CHECK-SAME:    workgroup(%[[X:.*]] : memref<256xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[H:.*]] : memref<128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[Q:.*]] : memref<264xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[COUNTS:.*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:    known_block_size = array<i32: 256, 1, 1>
// CHECK:         %[[IDS:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xi32>
// CHECK:         arith.divui %block_id_x
// CHECK:         arith.remui %block_id_x
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c256 iter_args({{.*}}) -> (index, index) {
// CHECK:           memref.load %[[IDS]]
// CHECK-COUNT-5:   {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           scf.if
// CHECK-NEXT:        memref.store %{{.*}}, %[[COUNTS]]
// CHECK:           gpu.barrier
// CHECK:           arith.uitofp
// CHECK:           memref.store %{{.*}}, %[[Q]]
// CHECK:           gpu.barrier
// CHECK:           arith.divui %{{.*}}, %c8
// CHECK:           scf.for
// CHECK:             arith.remui
// CHECK:             scf.if
// CHECK:               memref.load %[[Q]]
// CHECK:               arith.fptoui
// CHECK-COUNT-8:       vector.store %{{.*}}, %[[X]]
// CHECK:               gpu.barrier
// CHECK:               scf.for
// CHECK:                 scf.for {{.*}} -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:                   vector.load %{{.*}} {alignment = 8 : i64} : memref<?xi16>, vector<4xi16>
// CHECK:                   vector.load %{{.*}} {alignment = 8 : i64} : memref<?xi16>, vector<4xi16>
// CHECK-NOT:               memref<?xi16>
// CHECK-COUNT-8:           vector.load %[[X]]
// CHECK:                 scf.if
// CHECK-COUNT-8:           memref.store %{{.*}}, %[[H]]
// CHECK:               gpu.barrier
// CHECK:               scf.for
// CHECK:                 scf.for {{.*}} -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:                   vector.load %{{.*}} : memref<?xi16>, vector<4xi16>
// CHECK-COUNT-8:           vector.load %[[H]]
// CHECK:                 scf.if
// CHECK:                   memref.store %{{.*}} : memref<?xf32>
// CHECK-COUNT-7:           scf.if
// CHECK:               gpu.barrier
// The partial block moves to the queue front.
// CHECK:           scf.if
// CHECK:             memref.load %[[Q]]
// CHECK:             memref.store %{{.*}}, %[[Q]]
// CHECK:           gpu.barrier
// CHECK:           scf.yield
// The last, partial block.
// CHECK:         arith.cmpi ugt
// CHECK:         scf.if
// CHECK:           scf.if
// CHECK:             memref.load %[[Q]]
// CHECK:         gpu.return
func.func @step(%x: tensor<?x32xf32> {qtf.input = "tokens"}, %ids: tensor<?x2xi32> {qtf.input = "tokens"}, %w: tensor<?x2xf32> {qtf.input = "tokens"}) -> tensor<?x2x32xf32> {
  %gu = qtf.weight ["experts.gate_up_proj"] : tensor<256x32xbf16>
  %d = qtf.weight ["experts.down_proj"] : tensor<256x16xbf16>
  %0 = qkernel.launch @kernels::@qk0_experts(%x, %ids, %w, %gu, %d) : (tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16>) -> tensor<?x2x32xf32>
  return %0 : tensor<?x2x32xf32>
}
module @kernels {
  func.func @qk0_experts(%arg0: tensor<?x32xf32>, %arg1: tensor<?x2xi32>, %arg2: tensor<?x2xf32>, %arg3: tensor<256x32xbf16>, %arg4: tensor<256x16xbf16>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
    %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 16 : i64, num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
    return %0 : tensor<?x2x32xf32>
  }
}
