// RUN: rm -rf %t && mkdir -p %t
// RUN: qwen-opt %s --pass-pipeline='builtin.module(gpu.module(qwen-gpu-expand-subgroup-reduce,canonicalize,cse))' > %t/canon.mlir
// RUN: %python %S/simt/simt.py lower %t/canon.mlir %t
// RUN: qwen-opt %t/emu.mlir --qwen-cpu-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t/emu.ll
// RUN: clang -O1 -shared -fPIC -Wno-override-module %t/emu.ll %S/simt/simt_runtime.c %t/wrappers.c -o %t/emu.so -lm -lpthread
// RUN: %python %S/simt/simt.py gemm-check %t | FileCheck %s
// RUN: qwen-opt %s --pass-pipeline='builtin.module(gpu.module(convert-nvgpu-to-nvvm))' 2>&1 >/dev/null | FileCheck %s --check-prefix=UPSTREAM

// The bf16 tensor-core GEMM tile (mma_nt_f16 of lower-to-ptx-mma.mlir with
// bf16 operands: A ldmatrix x4, B^T ldmatrix x2, m16n8k16 bf16 -> f32),
// checked on the SIMT emulator against a host GEMM of the same bf16 inputs.
//
// Upstream convert-nvgpu-to-nvvm (LLVM 22) cannot lower a bf16
// nvgpu.mma.sync: it reports an error and leaves the op (the pass itself
// succeeds, so the GPU lowering fails later, at the LLVM translation). It
// passes the vector<2xbf16> registers on to nvvm.mma.sync, which infers no
// PTX type from them (its bf16 operands are i32 registers). A bf16 kernel
// needs nvvm.mma.sync with i32 operands, or an upstream fix; this check
// fails once upstream lowers it.

// CHECK: mma_nt_bf16    m16n8k16 bf16 64x64x64: max err {{.*}} of sum|ab|{{$}}
// CHECK: PASS

// UPSTREAM: error: 'nvgpu.mma.sync' op failed to deduce operand PTX types

gpu.module @qwen_kernels [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">] {

  gpu.func @mma_nt_bf16(%a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr)
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
            : memref<64x72xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
        %bk = arith.addi %k0, %bcol : index
        %fb = nvgpu.ldmatrix %sb[%bn, %bk] {numTiles = 2 : i32, transpose = false}
            : memref<64x72xbf16, #gpu.address_space<workgroup>> -> vector<2x2xbf16>
        %d = nvgpu.mma.sync(%fa, %fb, %sum) {mmaShape = [16, 8, 16]}
            : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
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
}
