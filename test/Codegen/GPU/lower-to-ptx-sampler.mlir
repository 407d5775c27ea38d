// REQUIRES: ptxas
// RUN: rm -rf %t && mkdir -p %t
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t/1001.mlir
// RUN: %python %S/extract-ptx.py < %t/1001.mlir > %t/1001.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t/1001.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t/1001.ptx -o %t/1001.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90 -O3 -v %t/1001.ptx -o %t/1001.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL
// RUN: sed 's/1001/1000/g' %s | qwen-opt --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm | %python %S/extract-ptx.py > %t/1000.ptx
// RUN: FileCheck %s --check-prefix=VEC4 < %t/1000.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t/1000.ptx -o %t/1000.cubin 2>&1 | FileCheck %s --check-prefixes=PTXAS,NOSPILL
// RUN: sed 's/1001/50/g' %s | qwen-opt --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm | %python %S/extract-ptx.py > %t/50.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t/50.ptx -o %t/50.cubin 2>&1 | FileCheck %s --check-prefixes=PTXAS,NOSPILL
// RUN: sed 's/1001/5001/g' %s | qwen-opt --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm | %python %S/extract-ptx.py > %t/5001.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t/5001.ptx -o %t/5001.cubin 2>&1 | FileCheck %s --check-prefixes=PTXAS,NOSPILL

// The sampler's qk_argmax and qk_topk through NVVM to PTX for an lm_head of
// 1001 rows (scalar loads, 1024 threads), and, by rewriting the vocab, 1000
// (16-byte loads, 256 threads), 50 (8-byte loads, one warp; qk_topk has
// 1024 threads at every vocab) and 5001 (strides unrolled by four): ptxas assembles each for
// sm_90 without spills. qk_topk counts with shared-memory atomics
// (atom.shared.add.f32). The demo's 151936 is in lower-to-ptx.mlir;
// simt-numerics-sampler.test runs these four on the SIMT emulator.

// PTX:         .visible .entry qk_argmax(
// PTX-NEXT:      .param .u64 .ptr .align 1 qk_argmax_param_0,
// PTX-NEXT:      .param .u64 .ptr .align 1 qk_argmax_param_1,
// PTX-NEXT:      .param .u64 qk_argmax_param_2,
// PTX-NEXT:      .param .u64 qk_argmax_param_3,
// PTX-NEXT:      .param .u64 qk_argmax_param_4,
// PTX-NEXT:      .param .u64 qk_argmax_param_5
// PTX-NEXT:    )
// PTX:         .maxntid 1024, 1, 1
// PTX:           .shared .align 16 .b8 __wg_qk_argmax_0[256];
// PTX:           ld.global.b32
// PTX:           shfl.sync.bfly.b32
// PTX:           bar.sync
// PTX:           st.global.b32
// PTX:         .visible .entry qk_topk(
// PTX-NEXT:      .param .u64 .ptr .align 1 qk_topk_param_0,
// PTX-NEXT:      .param .u64 .ptr .align 1 qk_topk_param_1,
// PTX-NEXT:      .param .u64 .ptr .align 1 qk_topk_param_2,
// PTX-NEXT:      .param .u64 qk_topk_param_3,
// PTX-NEXT:      .param .u64 qk_topk_param_4,
// PTX-NEXT:      .param .u64 qk_topk_param_5,
// PTX-NEXT:      .param .u64 qk_topk_param_6
// PTX-NEXT:    )
// PTX:         .maxntid 1024, 1, 1
// PTX:           atom.shared.add.f32
// PTX:           shfl.sync.bfly.b32
// PTX:           bar.sync
// PTX:           st.global.b32
// VEC4:        .visible .entry qk_argmax(
// VEC4:        .maxntid 256, 1, 1
// VEC4:          ld.global.v4.b32
// PTXAS-DAG:   Compiling entry function 'qk_argmax' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk_topk' for 'sm_90'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame

module {
  func.func @step(%arg0: tensor<?x64xf32> {qtf.input = "tokens"}, %arg1: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x1001xf32> attributes {qkernel.buffers = [{symbol = "R", type = tensor<?x1001xf32>}]} {
    %0 = qtf.weight ["lm_head.weight"] : tensor<1001x64xf32>
    %1 = qkernel.launch @kernels::@qk0_matmul(%arg0, %arg1, %0) {result_buffers = array<i64: 0>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<1001x64xf32>) -> tensor<?x1001xf32>
    return %1 : tensor<?x1001xf32>
  }
  module @kernels {
    func.func @qk0_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<1001x64xf32>) -> tensor<?x1001xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
      %1 = qtf.linear %0, %arg2 : tensor<?x64xf32>, tensor<1001x64xf32> -> tensor<?x1001xf32>
      return %1 : tensor<?x1001xf32>
    }
  }
}
