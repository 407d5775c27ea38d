// RUN: qwen-opt %s -split-input-file -verify-diagnostics

func.func @narrow_images(%emb: tensor<256x64xf32>, %tokens: tensor<?xi32>, %rows: tensor<?xi32>,
                         %images: tensor<?x32xf32>) {
  // expected-error @+1 {{image embeddings must be as wide as the table}}
  %x = qtf.multimodal_embedding %emb[%tokens], %images[%rows] : tensor<256x64xf32>, tensor<?xi32>, tensor<?x32xf32>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

func.func @rows_per_id(%emb: tensor<256x64xf32>, %tokens: tensor<4xi32>, %rows: tensor<3xi32>,
                       %images: tensor<?x64xf32>) {
  // expected-error @+1 {{image rows must have one entry per id}}
  %x = qtf.multimodal_embedding %emb[%tokens], %images[%rows] : tensor<256x64xf32>, tensor<4xi32>, tensor<?x64xf32>, tensor<3xi32> -> tensor<4x64xf32>
  return
}

// -----

func.func @bf16_images(%emb: tensor<256x64xbf16>, %tokens: tensor<?xi32>, %rows: tensor<?xi32>,
                       %images: tensor<?x64xbf16>) {
  // expected-error @+1 {{image embeddings and the result must be f32}}
  %x = qtf.multimodal_embedding %emb[%tokens], %images[%rows] : tensor<256x64xbf16>, tensor<?xi32>, tensor<?x64xbf16>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

func.func @result_rows(%emb: tensor<256x64xf32>, %tokens: tensor<4xi32>, %rows: tensor<4xi32>,
                       %images: tensor<?x64xf32>) {
  // expected-error @+1 {{result must be [num ids, embedding width]}}
  %x = qtf.multimodal_embedding %emb[%tokens], %images[%rows] : tensor<256x64xf32>, tensor<4xi32>, tensor<?x64xf32>, tensor<4xi32> -> tensor<5x64xf32>
  return
}
