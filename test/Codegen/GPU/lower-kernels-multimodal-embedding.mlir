// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s --check-prefix=CPU

// multimodal_embedding (the embedding kind of a vision-language model): per
// (token, chunk), a token whose image row is >= 0 copies that f32 row of the
// image embeddings, any other its bf16 table row (widened by a shift).
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_embedding
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 256, shared = 0>
// CHECK:       gpu.func @qk0_embedding(
// CHECK:         %[[ROW:.*]] = memref.load %{{.*}} : memref<?xi32>
// CHECK:         %[[IMAGE:.*]] = arith.index_cast %[[ROW]] : i32 to index
// CHECK:         %[[YES:.*]] = arith.cmpi sge, %[[IMAGE]], %{{.*}} : index
// CHECK:         %[[NO:.*]] = arith.cmpi slt, %[[IMAGE]], %{{.*}} : index
// CHECK:         scf.if %[[YES]]
// CHECK:           vector.load %{{.*}} : memref<?xf32>, vector<4xf32>
// CHECK:           vector.store
// CHECK:         scf.if %[[NO]]
// CHECK:           vector.load %{{.*}} : memref<?xi16>, vector<4xi16>
// CHECK:           arith.shli
// CHECK:           vector.store
// The CPU kernel is the same function of KernelTarget, 8-wide.
// CPU:       qkernel.launch @kernels::@qk0_embedding
// CPU-SAME:    launch = #qkernel.launch<grid = [T]>
// CPU:       func.func @qk0_embedding(
// CPU:         %[[YES:.*]] = arith.cmpi sge
// CPU:         %[[NO:.*]] = arith.cmpi slt
// CPU:         scf.if %[[YES]]
// CPU:           vector.load %{{.*}} : memref<?xf32>, vector<8xf32>
// CPU:         scf.if %[[NO]]
// CPU:           vector.load %{{.*}} : memref<?xi16>, vector<8xi16>
func.func @step(%ids: tensor<?xi32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "image_rows"},
                %images: tensor<?x1024xf32> {qtf.input = "image_embeds"}) -> tensor<?x1024xf32> {
  %t = qtf.weight ["embed"] : tensor<1000x1024xbf16>
  %0 = qkernel.launch @kernels::@qk0_embedding(%t, %ids, %rows, %images) : (tensor<1000x1024xbf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x1024xf32>) -> tensor<?x1024xf32>
  return %0 : tensor<?x1024xf32>
}
module @kernels {
  func.func @qk0_embedding(%t: tensor<1000x1024xbf16>, %ids: tensor<?xi32>, %rows: tensor<?xi32>, %images: tensor<?x1024xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<embedding>} {
    %0 = qtf.multimodal_embedding %t[%ids], %images[%rows] : tensor<1000x1024xbf16>, tensor<?xi32>, tensor<?x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
    return %0 : tensor<?x1024xf32>
  }
}
