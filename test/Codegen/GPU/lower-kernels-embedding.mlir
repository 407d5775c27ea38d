// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// embedding: blocks of (token, chunk). A row of 1024 bf16 is 256 vectors of
// 4: one chunk of 256 threads, one 8-byte load (4 x i16, widened by a shift)
// and one 16-byte store per thread, no guard since the block fits exactly.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_embedding
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 256, shared = 0>
// CHECK:       gpu.func @qk0_embedding(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) kernel
// CHECK-NOT:     scf.if
// CHECK:         %[[ID:.*]] = memref.load %{{.*}} : memref<?xi32>
// CHECK:         arith.index_cast %[[ID]] : i32 to index
// CHECK:         vector.load %{{.*}} {alignment = 8 : i64} : memref<?xi16>, vector<4xi16>
// CHECK:         arith.extui %{{.*}} : vector<4xi16> to vector<4xi32>
// CHECK:         arith.shli
// CHECK:         arith.bitcast %{{.*}} : vector<4xi32> to vector<4xf32>
// CHECK:         vector.store %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
func.func @step(%ids: tensor<?xi32> {qtf.input = "tokens"}) -> tensor<?x1024xf32> {
  %t = qtf.weight ["embed"] : tensor<1000x1024xbf16>
  %0 = qkernel.launch @kernels::@qk0_embedding(%t, %ids) : (tensor<1000x1024xbf16>, tensor<?xi32>) -> tensor<?x1024xf32>
  return %0 : tensor<?x1024xf32>
}
module @kernels {
  func.func @qk0_embedding(%t: tensor<1000x1024xbf16>, %ids: tensor<?xi32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<embedding>} {
    %0 = qtf.embedding %t[%ids] : tensor<1000x1024xbf16>, tensor<?xi32> -> tensor<?x1024xf32>
    return %0 : tensor<?x1024xf32>
  }
}

// -----

// A row of 2600 f16 (650 vectors of 4) needs 3 chunks of 256 threads; the
// last one overhangs the row, so columns are guarded.
// CHECK-LABEL: func.func @step
// CHECK:       launch = #qkernel.launch<grid = [T, 3], block = 256,
// CHECK:       gpu.func @qk0_embedding
// CHECK:         arith.remui %{{.*}}, %{{.*}} : index
// CHECK:         %[[WIDTH:.*]] = arith.constant 2600 : index
// CHECK:         %[[INSIDE:.*]] = arith.cmpi ult, %{{.*}}, %[[WIDTH]] : index
// CHECK:         scf.if %[[INSIDE]]
// CHECK:           vector.load %{{.*}} {alignment = 8 : i64} : memref<?xf16>, vector<4xf16>
// CHECK:           arith.extf %{{.*}} : vector<4xf16> to vector<4xf32>
func.func @step(%ids: tensor<?xi32> {qtf.input = "tokens"}) -> tensor<?x2600xf32> {
  %t = qtf.weight ["embed"] : tensor<1000x2600xf16>
  %0 = qkernel.launch @kernels::@qk0_embedding(%t, %ids) : (tensor<1000x2600xf16>, tensor<?xi32>) -> tensor<?x2600xf32>
  return %0 : tensor<?x2600xf32>
}
module @kernels {
  func.func @qk0_embedding(%t: tensor<1000x2600xf16>, %ids: tensor<?xi32>) -> tensor<?x2600xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<embedding>} {
    %0 = qtf.embedding %t[%ids] : tensor<1000x2600xf16>, tensor<?xi32> -> tensor<?x2600xf32>
    return %0 : tensor<?x2600xf32>
  }
}
