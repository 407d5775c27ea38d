// RUN: qwen-opt %s | qwen-opt | FileCheck %s

// CHECK-LABEL: func.func @embed
// CHECK: qtf.multimodal_embedding %{{.*}}[%{{.*}}], %{{.*}}[%{{.*}}] : tensor<256x64xbf16>, tensor<?xi32>, tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
func.func @embed(%emb: tensor<256x64xbf16>, %tokens: tensor<?xi32>, %rows: tensor<?xi32>,
                 %images: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %x = qtf.multimodal_embedding %emb[%tokens], %images[%rows] : tensor<256x64xbf16>, tensor<?xi32>, tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}
