// RUN: qwen-opt %s --split-input-file --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=split" --qwen-cpu-lower-kernels | FileCheck %s --check-prefix=SPLIT
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=round" --qwen-cpu-lower-kernels | FileCheck %s --check-prefix=ROUND
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule="vector-width=16 cpu-features=avx512f" --qwen-cpu-lower-kernels | FileCheck %s --check-prefix=FMA
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=split" --qwen-cpu-lower-kernels | qwen-opt --split-input-file --pass-pipeline="builtin.module(builtin.module(qwen-cpu-lower-to-llvm))" | FileCheck %s --check-prefix=LLVM

// The dot kinds come from the schedule (test/Schedule/dot-kind.mlir pins
// the choice); the codegen emits what `dot` and `decode_dot` say.
// bf16 weights on an AVX512-BF16 target: each step of the register tile
// takes 32 bf16 weights (i16 storage reinterpreted) and dots them with the
// activations as vdpbf16ps. split (the default): the one-token (decode) tiles
// split the f32 activations into bf16 hi + lo parts accumulated in separate
// registers (2 accumulators for the 1 x 1 tile, which walks the weight rows
// one by one with no remainder tile), while the 4-token tiles (prefill, and
// the 4 x 1 tiles of steps of at most 4 tokens) keep f32 FMAs; round: every
// tile dots rounded activations.
// A step of >= 16 tokens takes the cache-blocked path (BlockedMatmul.cpp,
// test/Codegen/CPU/lower-kernels-blocked-prefill.mlir) under the scf.if;
// its else branch is the per-item path. Blocked 4 x 4 tiles take `dot`, its
// leftover tokens `decode_dot`, like the per-item path's tiles.
// SPLIT-LABEL: func.func @qk0_matmul
// SPLIT:          arith.cmpi sge, %{{.*}}, %c16 : index
// SPLIT-NEXT:     scf.if
// SPLIT-COUNT-16: vector.fma
// SPLIT:          vector.shuffle
// SPLIT:          x86vector.avx512.dot
// SPLIT:          } else {
// SPLIT-NOT:     x86vector
// Steps of at most 4 tokens: 4 x 1 FMA tiles, then the lone tokens' dots.
// SPLIT:         scf.if
// SPLIT-COUNT-4: vector.fma
// SPLIT:         vector.load %{{.*}} : memref<?xi16>, vector<32xi16>
// SPLIT:         arith.bitcast %{{.*}} : vector<32xi16> to vector<32xbf16>
// SPLIT:         vector.load %{{.*}} : memref<?xf32>, vector<32xf32>
// SPLIT:         %[[HI:.*]] = arith.truncf %{{.*}} : vector<32xf32> to vector<32xbf16>
// SPLIT:         arith.extf %[[HI]] : vector<32xbf16> to vector<32xf32>
// SPLIT:         arith.subf
// SPLIT:         arith.truncf %{{.*}} : vector<32xf32> to vector<32xbf16>
// SPLIT-COUNT-2: x86vector.avx512.dot %{{.*}} : vector<32xbf16> -> vector<16xf32>
// SPLIT:         arith.addf %{{.*}} : vector<16xf32>
// SPLIT:         vector.reduction <add>
// Longer steps: 4 x 2 and 4 x 1 FMA tiles, then the lone tokens' dots.
// SPLIT:         scf.if
// SPLIT-NOT:     x86vector
// SPLIT-COUNT-12: vector.fma
// SPLIT-COUNT-2: x86vector.avx512.dot
// SPLIT-NOT:     x86vector.avx512.dot

// The blocked path (packed layout, prefill_tile = [6, 64]) packs each panel's
// weights once: 16 rows x 16 bf16 pairs at a time, transposed by 64 i32
// shuffles, so a vector holds one pair of 16 rows. A token block's 6
// activation rows are rounded once per panel into a bf16 scratch block (rows
// 96 apart: a cache line more than k). A tile of 6 tokens x 4 groups of 16
// rows takes 24 accumulators; lane class l (pairs 16 s + l) is a pass of
// its own over s, whose accumulators are added to the totals in l order
// (the per-item accumulator's lanes summed by vector.reduction, bit for bit),
// each activation pair broadcast to every lane.
// ROUND-LABEL: func.func @qk0_matmul
// ROUND:          %[[TOTALS:.*]] = memref.alloca() : memref<384xf32>
// ROUND:          %[[PACKED:.*]] = memref.alloca() : memref<4096xi16>
// ROUND:          %[[BLOCK:.*]] = memref.alloca() : memref<576xi16>
// ROUND:          scf.if
// ROUND:          scf.for %{{.*}} step %c64
// ROUND-COUNT-16: vector.bitcast %{{.*}} : vector<32xi16> to vector<16xi32>
// ROUND-COUNT-64: vector.shuffle {{.*}} : vector<16xi32>, vector<16xi32>
// ROUND-COUNT-16: vector.store %{{.*}}, %[[PACKED]][%{{.*}}] : memref<4096xi16>, vector<32xi16>
// ROUND:          scf.for %{{.*}} step %c6
// ROUND-COUNT-6:  vector.store %{{.*}}, %[[BLOCK]][%{{.*}}] : memref<576xi16>, vector<32xi16>
// ROUND:          vector.store %{{.*}}, %[[TOTALS]]
// ROUND:          scf.for %{{.*}} = %{{.*}} to %c16{{.*}} step %c1
// ROUND:          scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// ROUND-COUNT-4:  vector.load %[[PACKED]]
// ROUND-COUNT-6:  vector.broadcast %{{.*}} : i32 to vector<16xi32>
// ROUND-COUNT-24: x86vector.avx512.dot
// ROUND-NOT:      vector.reduction
// ROUND-COUNT-24: arith.addf {{.*}} : vector<16xf32>
// ROUND:          } else {
// ROUND-NOT:     arith.subf
// ROUND-NOT:     vector.fma
// ROUND:         scf.if
// ROUND-COUNT-4: x86vector.avx512.dot %{{.*}} : vector<32xbf16> -> vector<16xf32>
// ROUND:         vector.reduction <add>
// ROUND-COUNT-1: x86vector.avx512.dot
// ROUND:         scf.if
// ROUND-COUNT-8: x86vector.avx512.dot
// ROUND:         vector.reduction <add>
// ROUND-COUNT-5: x86vector.avx512.dot
// ROUND-NOT:     x86vector.avx512.dot

// Without avx512bf16 the weights are widened to f32 for vector FMAs.
// FMA-LABEL: func.func @qk0_matmul
// FMA-NOT:     x86vector
// FMA:         arith.shli
// FMA:         vector.fma

// LLVM-LABEL: llvm.func @qk0_matmul
// LLVM:         llvm.call_intrinsic "llvm.x86.avx512bf16.dpbf16ps.512"

func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x64xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<40x64xbf16>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}

// -----

// f32 weights keep the FMA tile whatever the target.
// SPLIT-LABEL: func.func @qk0_matmul
// SPLIT-NOT:     x86vector
// SPLIT:         vector.fma
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x64xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<40x64xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<40x64xf32>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xf32> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}

// -----

// So does a reduction length that is not a multiple of 32 (the narrower
// vdpbf16ps forms need avx512vl, which this target lacks).
// SPLIT-LABEL: func.func @qk1_matmul
// SPLIT-NOT:     x86vector
// SPLIT:         vector.fma
func.func @step(%x: tensor<?x48xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x48xbf16>
  %0 = qkernel.launch @kernels::@qk1_matmul(%x, %w) : (tensor<?x48xf32>, tensor<40x48xbf16>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk1_matmul(%x: tensor<?x48xf32>, %w: tensor<40x48xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x48xf32>, tensor<40x48xbf16> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}
