// REQUIRES: ptxas
// RUN: qwen-opt %s --pass-pipeline='builtin.module(gpu.module(convert-nvgpu-to-nvvm))' | qwen-opt --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: FileCheck %s < %t.ptx
// RUN: ptxas -arch=sm_90a -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS

// Tensor-core GEMM tiles written by hand with the nvgpu dialect (the
// foundation of the prefill kernels, issue 15): upstream
// convert-nvgpu-to-nvvm turns nvgpu.ldmatrix / nvgpu.mma.sync into NVVM, the
// project's lowering (qwen-gpu-lower-to-nvvm) serializes the module to PTX,
// and ptxas assembles every entry for sm_90a without spills. Their numerics
// are checked without a GPU by simt-numerics-mma.test (the SIMT emulator's
// warp-collective ldmatrix and mma.sync against a host GEMM); the bf16
// variant is simt-numerics-mma-bf16.mlir.
//
// Every kernel: one block of four warps; A 64x64 row-major (%a), C 64x64 f32
// row-major (%c); B 64x64 either as B^T ([N][K] row-major, `nt`: weights as
// the project stores them) or as B ([K][N] row-major, `nn`). A and B are
// staged through workgroup memory (rows padded to 72 elements; the buffers
// 16-byte aligned, as ldmatrix rows must be); warp w computes rows
// 16w..16w+15 of C, one 16x8 tile at a time, accumulating over K in f32.
// Kernel names say the B layout, the element type and the shape (simt.py
// gemm-check reads them):
//
//   mma_nt_f16     m16n8k16 f16: A ldmatrix x4, B^T ldmatrix x2
//   mma_nn_f16     m16n8k16 f16: A ldmatrix x4, B ldmatrix x4 .trans (the
//                                fragments of two n-tiles per load)
//   mma_nn_f16_k8  m16n8k8 f16:  A ldmatrix x2, B ldmatrix x1 .trans
//   mma_nt_bf16_nvvm  m16n8k16 bf16: mma_nt_f16 with bf16 operands, through
//                                nvvm.mma.sync (the .b32 registers of the
//                                fragments): convert-nvgpu-to-nvvm cannot
//                                lower a bf16 nvgpu.mma.sync

// CHECK:       .target sm_90a
// CHECK:       .visible .entry mma_nt_f16(
// CHECK:         .shared .align 16 .b8 __wg_mma_nt_f16_0[9216];
// CHECK:         ldmatrix.sync.aligned.m8n8.x4.shared.b16
// CHECK:         ldmatrix.sync.aligned.m8n8.x2.shared.b16
// CHECK:         mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// CHECK:       .visible .entry mma_nn_f16(
// CHECK:         ldmatrix.sync.aligned.m8n8.x4.shared.b16
// CHECK:         ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
// CHECK:         mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// CHECK:       .visible .entry mma_nn_f16_k8(
// CHECK:         ldmatrix.sync.aligned.m8n8.x2.shared.b16
// CHECK:         ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16
// CHECK:         mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32
// CHECK:       .visible .entry mma_nt_bf16_nvvm(
// CHECK:         ldmatrix.sync.aligned.m8n8.x4.shared.b16
// CHECK:         ldmatrix.sync.aligned.m8n8.x2.shared.b16
// CHECK:         mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32

// PTXAS-COUNT-4: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

gpu.module @qwen_kernels [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">] {

  gpu.func @mma_nt_f16(%a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr)
      workgroup(%sa : memref<64x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64},
                %sb : memref<64x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
      kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c128 = arith.constant 128 : index
    %tid = gpu.thread_id x
    // Stage A and B (both 64x64, row-major) into workgroup memory.
    scf.for %i = %c0 to %c32 step %c1 {
      %base = arith.muli %i, %c128 : index
      %idx = arith.addi %base, %tid : index
      %row = arith.divui %idx, %c64 : index
      %col = arith.remui %idx, %c64 : index
      %idx64 = arith.index_cast %idx : index to i64
      %pa = llvm.getelementptr %a[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, f16
      %va = llvm.load %pa : !llvm.ptr -> f16
      memref.store %va, %sa[%row, %col] : memref<64x72xf16, #gpu.address_space<workgroup>>
      %pb = llvm.getelementptr %b[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, f16
      %vb = llvm.load %pb : !llvm.ptr -> f16
      memref.store %vb, %sb[%row, %col] : memref<64x72xf16, #gpu.address_space<workgroup>>
    }
    gpu.barrier
    %warp = arith.divui %tid, %c32 : index
    %lane = arith.remui %tid, %c32 : index
    %m0 = arith.muli %warp, %c16 : index
    %l16 = arith.remui %lane, %c16 : index
    %lhi = arith.divui %lane, %c16 : index
    %arow = arith.addi %m0, %l16 : index
    // The accumulator fragment: c0 c1 at row g, c2 c3 at row g + 8, columns
    // 2 * (lane % 4) + {0, 1}.
    %g = arith.divui %lane, %c4 : index
    %tig = arith.remui %lane, %c4 : index
    %row0 = arith.addi %m0, %g : index
    %row1 = arith.addi %row0, %c8 : index
    %col0 = arith.muli %tig, %c2 : index
    %o0 = arith.muli %row0, %c64 : index
    %o1 = arith.muli %row1, %c64 : index
    %zero = arith.constant dense<0.0> : vector<2x2xf32>
    // A x4: lanes 0-15 give rows 0-15 at k0, lanes 16-31 rows 0-15 at k0 + 8
    // (matrices top-left, bottom-left, top-right, bottom-right: registers
    // a0a1, a2a3, a4a5, a6a7). B^T x2: lanes 0-7 give rows n0..n0+7 at k0,
    // lanes 8-15 at k0 + 8 (b0b1, b2b3); lanes 16-31 repeat them.
    %acol = arith.muli %lhi, %c8 : index
    %brow = arith.remui %lane, %c8 : index
    %bhalf = arith.divui %l16, %c8 : index
    %bcol = arith.muli %bhalf, %c8 : index
    scf.for %nt = %c0 to %c8 step %c1 {
      %n0 = arith.muli %nt, %c8 : index
      %bn = arith.addi %n0, %brow : index
      %acc = scf.for %kt = %c0 to %c4 step %c1 iter_args(%sum = %zero) -> (vector<2x2xf32>) {
        %k0 = arith.muli %kt, %c16 : index
        %ak = arith.addi %k0, %acol : index
        %fa = nvgpu.ldmatrix %sa[%arow, %ak] {numTiles = 4 : i32, transpose = false}
            : memref<64x72xf16, #gpu.address_space<workgroup>> -> vector<4x2xf16>
        %bk = arith.addi %k0, %bcol : index
        %fb = nvgpu.ldmatrix %sb[%bn, %bk] {numTiles = 2 : i32, transpose = false}
            : memref<64x72xf16, #gpu.address_space<workgroup>> -> vector<2x2xf16>
        %d = nvgpu.mma.sync(%fa, %fb, %sum) {mmaShape = [16, 8, 16]}
            : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
        scf.yield %d : vector<2x2xf32>
      }
      %cn = arith.addi %n0, %col0 : index
      %i0 = arith.addi %o0, %cn : index
      %i1 = arith.addi %o1, %cn : index
      %e0 = arith.index_cast %i0 : index to i64
      %e1 = arith.index_cast %i1 : index to i64
      %p00 = llvm.getelementptr %c[%e0] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p01 = llvm.getelementptr %p00[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %p10 = llvm.getelementptr %c[%e1] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p11 = llvm.getelementptr %p10[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %v00 = vector.extract %acc[0, 0] : f32 from vector<2x2xf32>
      %v01 = vector.extract %acc[0, 1] : f32 from vector<2x2xf32>
      %v10 = vector.extract %acc[1, 0] : f32 from vector<2x2xf32>
      %v11 = vector.extract %acc[1, 1] : f32 from vector<2x2xf32>
      llvm.store %v00, %p00 : f32, !llvm.ptr
      llvm.store %v01, %p01 : f32, !llvm.ptr
      llvm.store %v10, %p10 : f32, !llvm.ptr
      llvm.store %v11, %p11 : f32, !llvm.ptr
    }
    gpu.return
  }

  gpu.func @mma_nn_f16(%a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr)
      workgroup(%sa : memref<64x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64},
                %sb : memref<64x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
      kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c128 = arith.constant 128 : index
    %tid = gpu.thread_id x
    // Stage A and B (both 64x64, row-major) into workgroup memory.
    scf.for %i = %c0 to %c32 step %c1 {
      %base = arith.muli %i, %c128 : index
      %idx = arith.addi %base, %tid : index
      %row = arith.divui %idx, %c64 : index
      %col = arith.remui %idx, %c64 : index
      %idx64 = arith.index_cast %idx : index to i64
      %pa = llvm.getelementptr %a[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, f16
      %va = llvm.load %pa : !llvm.ptr -> f16
      memref.store %va, %sa[%row, %col] : memref<64x72xf16, #gpu.address_space<workgroup>>
      %pb = llvm.getelementptr %b[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, f16
      %vb = llvm.load %pb : !llvm.ptr -> f16
      memref.store %vb, %sb[%row, %col] : memref<64x72xf16, #gpu.address_space<workgroup>>
    }
    gpu.barrier
    %warp = arith.divui %tid, %c32 : index
    %lane = arith.remui %tid, %c32 : index
    %m0 = arith.muli %warp, %c16 : index
    %l16 = arith.remui %lane, %c16 : index
    %lhi = arith.divui %lane, %c16 : index
    %arow = arith.addi %m0, %l16 : index
    // The accumulator fragment: c0 c1 at row g, c2 c3 at row g + 8, columns
    // 2 * (lane % 4) + {0, 1}.
    %g = arith.divui %lane, %c4 : index
    %tig = arith.remui %lane, %c4 : index
    %row0 = arith.addi %m0, %g : index
    %row1 = arith.addi %row0, %c8 : index
    %col0 = arith.muli %tig, %c2 : index
    %o0 = arith.muli %row0, %c64 : index
    %o1 = arith.muli %row1, %c64 : index
    %zero = arith.constant dense<0.0> : vector<2x2xf32>
    // A x4 as in mma_nt_*. B x4 .trans: lanes 0-15 give rows k0..k0+15 at
    // n0, lanes 16-31 the same rows at n0 + 8: registers 0 and 1 are the
    // fragment of the n-tile n0, registers 2 and 3 that of n0 + 8.
    %acol = arith.muli %lhi, %c8 : index
    %bcol = arith.muli %lhi, %c8 : index
    %bzero = arith.constant dense<0.0> : vector<2x2xf16>
    scf.for %np = %c0 to %c4 step %c1 {
      %n0 = arith.muli %np, %c16 : index
      %n1 = arith.addi %n0, %c8 : index
      %bn = arith.addi %n0, %bcol : index
      %acc:2 = scf.for %kt = %c0 to %c4 step %c1 iter_args(%sum0 = %zero, %sum1 = %zero)
          -> (vector<2x2xf32>, vector<2x2xf32>) {
        %k0 = arith.muli %kt, %c16 : index
        %ak = arith.addi %k0, %acol : index
        %fa = nvgpu.ldmatrix %sa[%arow, %ak] {numTiles = 4 : i32, transpose = false}
            : memref<64x72xf16, #gpu.address_space<workgroup>> -> vector<4x2xf16>
        %bk = arith.addi %k0, %l16 : index
        %fb = nvgpu.ldmatrix %sb[%bk, %bn] {numTiles = 4 : i32, transpose = true}
            : memref<64x72xf16, #gpu.address_space<workgroup>> -> vector<4x2xf16>
        %r0 = vector.extract %fb[0] : vector<2xf16> from vector<4x2xf16>
        %r1 = vector.extract %fb[1] : vector<2xf16> from vector<4x2xf16>
        %r2 = vector.extract %fb[2] : vector<2xf16> from vector<4x2xf16>
        %r3 = vector.extract %fb[3] : vector<2xf16> from vector<4x2xf16>
        %h0 = vector.insert %r0, %bzero [0] : vector<2xf16> into vector<2x2xf16>
        %fb0 = vector.insert %r1, %h0 [1] : vector<2xf16> into vector<2x2xf16>
        %h1 = vector.insert %r2, %bzero [0] : vector<2xf16> into vector<2x2xf16>
        %fb1 = vector.insert %r3, %h1 [1] : vector<2xf16> into vector<2x2xf16>
        %d0 = nvgpu.mma.sync(%fa, %fb0, %sum0) {mmaShape = [16, 8, 16]}
            : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
        %d1 = nvgpu.mma.sync(%fa, %fb1, %sum1) {mmaShape = [16, 8, 16]}
            : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
        scf.yield %d0, %d1 : vector<2x2xf32>, vector<2x2xf32>
      }
      %cn_0 = arith.addi %n0, %col0 : index
      %i0_0 = arith.addi %o0, %cn_0 : index
      %i1_0 = arith.addi %o1, %cn_0 : index
      %e0_0 = arith.index_cast %i0_0 : index to i64
      %e1_0 = arith.index_cast %i1_0 : index to i64
      %p00_0 = llvm.getelementptr %c[%e0_0] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p01_0 = llvm.getelementptr %p00_0[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %p10_0 = llvm.getelementptr %c[%e1_0] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p11_0 = llvm.getelementptr %p10_0[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %v00_0 = vector.extract %acc#0[0, 0] : f32 from vector<2x2xf32>
      %v01_0 = vector.extract %acc#0[0, 1] : f32 from vector<2x2xf32>
      %v10_0 = vector.extract %acc#0[1, 0] : f32 from vector<2x2xf32>
      %v11_0 = vector.extract %acc#0[1, 1] : f32 from vector<2x2xf32>
      llvm.store %v00_0, %p00_0 : f32, !llvm.ptr
      llvm.store %v01_0, %p01_0 : f32, !llvm.ptr
      llvm.store %v10_0, %p10_0 : f32, !llvm.ptr
      llvm.store %v11_0, %p11_0 : f32, !llvm.ptr
      %cn_1 = arith.addi %n1, %col0 : index
      %i0_1 = arith.addi %o0, %cn_1 : index
      %i1_1 = arith.addi %o1, %cn_1 : index
      %e0_1 = arith.index_cast %i0_1 : index to i64
      %e1_1 = arith.index_cast %i1_1 : index to i64
      %p00_1 = llvm.getelementptr %c[%e0_1] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p01_1 = llvm.getelementptr %p00_1[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %p10_1 = llvm.getelementptr %c[%e1_1] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p11_1 = llvm.getelementptr %p10_1[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %v00_1 = vector.extract %acc#1[0, 0] : f32 from vector<2x2xf32>
      %v01_1 = vector.extract %acc#1[0, 1] : f32 from vector<2x2xf32>
      %v10_1 = vector.extract %acc#1[1, 0] : f32 from vector<2x2xf32>
      %v11_1 = vector.extract %acc#1[1, 1] : f32 from vector<2x2xf32>
      llvm.store %v00_1, %p00_1 : f32, !llvm.ptr
      llvm.store %v01_1, %p01_1 : f32, !llvm.ptr
      llvm.store %v10_1, %p10_1 : f32, !llvm.ptr
      llvm.store %v11_1, %p11_1 : f32, !llvm.ptr
    }
    gpu.return
  }

  gpu.func @mma_nn_f16_k8(%a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr)
      workgroup(%sa : memref<64x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64},
                %sb : memref<64x72xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
      kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c128 = arith.constant 128 : index
    %tid = gpu.thread_id x
    // Stage A and B (both 64x64, row-major) into workgroup memory.
    scf.for %i = %c0 to %c32 step %c1 {
      %base = arith.muli %i, %c128 : index
      %idx = arith.addi %base, %tid : index
      %row = arith.divui %idx, %c64 : index
      %col = arith.remui %idx, %c64 : index
      %idx64 = arith.index_cast %idx : index to i64
      %pa = llvm.getelementptr %a[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, f16
      %va = llvm.load %pa : !llvm.ptr -> f16
      memref.store %va, %sa[%row, %col] : memref<64x72xf16, #gpu.address_space<workgroup>>
      %pb = llvm.getelementptr %b[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, f16
      %vb = llvm.load %pb : !llvm.ptr -> f16
      memref.store %vb, %sb[%row, %col] : memref<64x72xf16, #gpu.address_space<workgroup>>
    }
    gpu.barrier
    %warp = arith.divui %tid, %c32 : index
    %lane = arith.remui %tid, %c32 : index
    %m0 = arith.muli %warp, %c16 : index
    %l16 = arith.remui %lane, %c16 : index
    %lhi = arith.divui %lane, %c16 : index
    %arow = arith.addi %m0, %l16 : index
    // The accumulator fragment: c0 c1 at row g, c2 c3 at row g + 8, columns
    // 2 * (lane % 4) + {0, 1}.
    %g = arith.divui %lane, %c4 : index
    %tig = arith.remui %lane, %c4 : index
    %row0 = arith.addi %m0, %g : index
    %row1 = arith.addi %row0, %c8 : index
    %col0 = arith.muli %tig, %c2 : index
    %o0 = arith.muli %row0, %c64 : index
    %o1 = arith.muli %row1, %c64 : index
    %zero = arith.constant dense<0.0> : vector<2x2xf32>
    // m16n8k8. A x2: lanes 0-15 give rows 0-15 at k0 (a0a1, a2a3); lanes
    // 16-31 repeat them. B x1 .trans: lanes 0-7 give rows k0..k0+7 at n0
    // (lanes 8-31 repeat them), transposed into the col-major fragment b0b1.
    %brow = arith.remui %lane, %c8 : index
    scf.for %nt = %c0 to %c8 step %c1 {
      %n0 = arith.muli %nt, %c8 : index
      %acc = scf.for %kt = %c0 to %c8 step %c1 iter_args(%sum = %zero) -> (vector<2x2xf32>) {
        %k0 = arith.muli %kt, %c8 : index
        %fa = nvgpu.ldmatrix %sa[%arow, %k0] {numTiles = 2 : i32, transpose = false}
            : memref<64x72xf16, #gpu.address_space<workgroup>> -> vector<2x2xf16>
        %bk = arith.addi %k0, %brow : index
        %fb = nvgpu.ldmatrix %sb[%bk, %n0] {numTiles = 1 : i32, transpose = true}
            : memref<64x72xf16, #gpu.address_space<workgroup>> -> vector<1x2xf16>
        %d = nvgpu.mma.sync(%fa, %fb, %sum) {mmaShape = [16, 8, 8]}
            : (vector<2x2xf16>, vector<1x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
        scf.yield %d : vector<2x2xf32>
      }
      %cn = arith.addi %n0, %col0 : index
      %i0 = arith.addi %o0, %cn : index
      %i1 = arith.addi %o1, %cn : index
      %e0 = arith.index_cast %i0 : index to i64
      %e1 = arith.index_cast %i1 : index to i64
      %p00 = llvm.getelementptr %c[%e0] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p01 = llvm.getelementptr %p00[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %p10 = llvm.getelementptr %c[%e1] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p11 = llvm.getelementptr %p10[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %v00 = vector.extract %acc[0, 0] : f32 from vector<2x2xf32>
      %v01 = vector.extract %acc[0, 1] : f32 from vector<2x2xf32>
      %v10 = vector.extract %acc[1, 0] : f32 from vector<2x2xf32>
      %v11 = vector.extract %acc[1, 1] : f32 from vector<2x2xf32>
      llvm.store %v00, %p00 : f32, !llvm.ptr
      llvm.store %v01, %p01 : f32, !llvm.ptr
      llvm.store %v10, %p10 : f32, !llvm.ptr
      llvm.store %v11, %p11 : f32, !llvm.ptr
    }
    gpu.return
  }

  gpu.func @mma_nt_bf16_nvvm(%a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr)
      workgroup(%sa : memref<64x72xbf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64},
                %sb : memref<64x72xbf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
      kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c128 = arith.constant 128 : index
    %tid = gpu.thread_id x
    // Stage A and B (both 64x64, row-major) into workgroup memory.
    scf.for %i = %c0 to %c32 step %c1 {
      %base = arith.muli %i, %c128 : index
      %idx = arith.addi %base, %tid : index
      %row = arith.divui %idx, %c64 : index
      %col = arith.remui %idx, %c64 : index
      %idx64 = arith.index_cast %idx : index to i64
      %pa = llvm.getelementptr %a[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, bf16
      %va = llvm.load %pa : !llvm.ptr -> bf16
      memref.store %va, %sa[%row, %col] : memref<64x72xbf16, #gpu.address_space<workgroup>>
      %pb = llvm.getelementptr %b[%idx64] : (!llvm.ptr, i64) -> !llvm.ptr, bf16
      %vb = llvm.load %pb : !llvm.ptr -> bf16
      memref.store %vb, %sb[%row, %col] : memref<64x72xbf16, #gpu.address_space<workgroup>>
    }
    gpu.barrier
    %warp = arith.divui %tid, %c32 : index
    %lane = arith.remui %tid, %c32 : index
    %m0 = arith.muli %warp, %c16 : index
    %l16 = arith.remui %lane, %c16 : index
    %lhi = arith.divui %lane, %c16 : index
    %arow = arith.addi %m0, %l16 : index
    // The accumulator fragment: c0 c1 at row g, c2 c3 at row g + 8, columns
    // 2 * (lane % 4) + {0, 1}.
    %g = arith.divui %lane, %c4 : index
    %tig = arith.remui %lane, %c4 : index
    %row0 = arith.addi %m0, %g : index
    %row1 = arith.addi %row0, %c8 : index
    %col0 = arith.muli %tig, %c2 : index
    %o0 = arith.muli %row0, %c64 : index
    %o1 = arith.muli %row1, %c64 : index
    %fzero = arith.constant 0.0 : f32
    // bf16: mma_nt_f16 with bf16 operands and nvvm.mma.sync (upstream
    // convert-nvgpu-to-nvvm cannot lower a bf16 nvgpu.mma.sync, see
    // simt-numerics-mma-bf16.mlir); f32 accumulators as four scalars.
    // A x4: lanes 0-15 give rows 0-15 at k0, lanes 16-31 rows 0-15 at k0 + 8
    // (matrices top-left, bottom-left, top-right, bottom-right: registers
    // a0a1, a2a3, a4a5, a6a7). B^T x2: lanes 0-7 give rows n0..n0+7 at k0,
    // lanes 8-15 at k0 + 8 (b0b1, b2b3); lanes 16-31 repeat them.
    %acol = arith.muli %lhi, %c8 : index
    %brow = arith.remui %lane, %c8 : index
    %bhalf = arith.divui %l16, %c8 : index
    %bcol = arith.muli %bhalf, %c8 : index
    scf.for %nt = %c0 to %c8 step %c1 {
      %n0 = arith.muli %nt, %c8 : index
      %bn = arith.addi %n0, %brow : index
      %acc:4 = scf.for %kt = %c0 to %c4 step %c1
          iter_args(%s0 = %fzero, %s1 = %fzero, %s2 = %fzero, %s3 = %fzero) -> (f32, f32, f32, f32) {
        %k0 = arith.muli %kt, %c16 : index
        %ak = arith.addi %k0, %acol : index
        %fa = nvgpu.ldmatrix %sa[%arow, %ak] {numTiles = 4 : i32, transpose = false}
            : memref<64x72xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
        %bk = arith.addi %k0, %bcol : index
        %fb = nvgpu.ldmatrix %sb[%bn, %bk] {numTiles = 2 : i32, transpose = false}
            : memref<64x72xbf16, #gpu.address_space<workgroup>> -> vector<2x2xbf16>
        // The fragments as the .b32 registers nvvm.mma.sync takes for bf16.
        %fa0 = vector.extract %fa[0] : vector<2xbf16> from vector<4x2xbf16>
        %fa1 = vector.extract %fa[1] : vector<2xbf16> from vector<4x2xbf16>
        %fa2 = vector.extract %fa[2] : vector<2xbf16> from vector<4x2xbf16>
        %fa3 = vector.extract %fa[3] : vector<2xbf16> from vector<4x2xbf16>
        %fb0 = vector.extract %fb[0] : vector<2xbf16> from vector<2x2xbf16>
        %fb1 = vector.extract %fb[1] : vector<2xbf16> from vector<2x2xbf16>
        %wa0 = vector.bitcast %fa0 : vector<2xbf16> to vector<1xi32>
        %wa1 = vector.bitcast %fa1 : vector<2xbf16> to vector<1xi32>
        %wa2 = vector.bitcast %fa2 : vector<2xbf16> to vector<1xi32>
        %wa3 = vector.bitcast %fa3 : vector<2xbf16> to vector<1xi32>
        %wb0 = vector.bitcast %fb0 : vector<2xbf16> to vector<1xi32>
        %wb1 = vector.bitcast %fb1 : vector<2xbf16> to vector<1xi32>
        %a0 = vector.extract %wa0[0] : i32 from vector<1xi32>
        %a1 = vector.extract %wa1[0] : i32 from vector<1xi32>
        %a2 = vector.extract %wa2[0] : i32 from vector<1xi32>
        %a3 = vector.extract %wa3[0] : i32 from vector<1xi32>
        %b0 = vector.extract %wb0[0] : i32 from vector<1xi32>
        %b1 = vector.extract %wb1[0] : i32 from vector<1xi32>
        %d = nvvm.mma.sync A[%a0, %a1, %a2, %a3] B[%b0, %b1] C[%s0, %s1, %s2, %s3]
            {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>,
             multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>,
             shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
        %d0 = llvm.extractvalue %d[0] : !llvm.struct<(f32, f32, f32, f32)>
        %d1 = llvm.extractvalue %d[1] : !llvm.struct<(f32, f32, f32, f32)>
        %d2 = llvm.extractvalue %d[2] : !llvm.struct<(f32, f32, f32, f32)>
        %d3 = llvm.extractvalue %d[3] : !llvm.struct<(f32, f32, f32, f32)>
        scf.yield %d0, %d1, %d2, %d3 : f32, f32, f32, f32
      }
      %cn = arith.addi %n0, %col0 : index
      %i0 = arith.addi %o0, %cn : index
      %i1 = arith.addi %o1, %cn : index
      %e0 = arith.index_cast %i0 : index to i64
      %e1 = arith.index_cast %i1 : index to i64
      %p00 = llvm.getelementptr %c[%e0] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p01 = llvm.getelementptr %p00[1] : (!llvm.ptr) -> !llvm.ptr, f32
      %p10 = llvm.getelementptr %c[%e1] : (!llvm.ptr, i64) -> !llvm.ptr, f32
      %p11 = llvm.getelementptr %p10[1] : (!llvm.ptr) -> !llvm.ptr, f32
      llvm.store %acc#0, %p00 : f32, !llvm.ptr
      llvm.store %acc#1, %p01 : f32, !llvm.ptr
      llvm.store %acc#2, %p10 : f32, !llvm.ptr
      llvm.store %acc#3, %p11 : f32, !llvm.ptr
    }
    gpu.return
  }

}
