// RUN: qwen-opt %s --pass-pipeline='builtin.module(gpu.module(qwen-gpu-expand-subgroup-reduce))' | FileCheck %s

// A warp sum as the emitters write it (GpuKernelEmitter::laneReduce): one
// two-lane cluster per butterfly step, offsets 16 down to 1. Each becomes one
// xor shuffle over the 32-lane warp and one add of (value, shuffled), in
// that order: the summation order of a hand-written 16 -> 1 butterfly. (One
// reduce over the whole warp would expand with offsets 1 up to 16.)

// CHECK-LABEL: gpu.func @warp_sum(
// CHECK-SAME:    %[[X:.*]]: f32,
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : i32
// CHECK-DAG:     %[[C2:.*]] = arith.constant 2 : i32
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : i32
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : i32
// CHECK-DAG:     %[[C16:.*]] = arith.constant 16 : i32
// CHECK-DAG:     %[[W:.*]] = arith.constant 32 : i32
// CHECK:         %[[S16:.*]], %{{.*}} = gpu.shuffle  xor %[[X]], %[[C16]], %[[W]] : f32
// CHECK-NEXT:    %[[A16:.*]] = arith.addf %[[X]], %[[S16]] : f32
// CHECK-NEXT:    %[[S8:.*]], %{{.*}} = gpu.shuffle  xor %[[A16]], %[[C8]], %[[W]] : f32
// CHECK-NEXT:    %[[A8:.*]] = arith.addf %[[A16]], %[[S8]] : f32
// CHECK-NEXT:    %[[S4:.*]], %{{.*}} = gpu.shuffle  xor %[[A8]], %[[C4]], %[[W]] : f32
// CHECK-NEXT:    %[[A4:.*]] = arith.addf %[[A8]], %[[S4]] : f32
// CHECK-NEXT:    %[[S2:.*]], %{{.*}} = gpu.shuffle  xor %[[A4]], %[[C2]], %[[W]] : f32
// CHECK-NEXT:    %[[A2:.*]] = arith.addf %[[A4]], %[[S2]] : f32
// CHECK-NEXT:    %[[S1:.*]], %{{.*}} = gpu.shuffle  xor %[[A2]], %[[C1]], %[[W]] : f32
// CHECK-NEXT:    %[[A1:.*]] = arith.addf %[[A2]], %[[S1]] : f32
// CHECK-NEXT:    memref.store %[[A1]]
// CHECK-NOT:     gpu.subgroup_reduce

// CHECK-LABEL: gpu.func @lane_max(
// CHECK:         gpu.shuffle xor {{.*}} : f32
// CHECK:         arith.maximumf
// CHECK:         gpu.shuffle xor {{.*}} : f32
// CHECK:         arith.maximumf
// CHECK-NOT:     gpu.shuffle
gpu.module @kernels {
  gpu.func @warp_sum(%x: f32, %out: memref<1xf32>) kernel {
    %0 = gpu.subgroup_reduce add %x cluster(size = 2, stride = 16) : (f32) -> f32
    %1 = gpu.subgroup_reduce add %0 cluster(size = 2, stride = 8) : (f32) -> f32
    %2 = gpu.subgroup_reduce add %1 cluster(size = 2, stride = 4) : (f32) -> f32
    %3 = gpu.subgroup_reduce add %2 cluster(size = 2, stride = 2) : (f32) -> f32
    %4 = gpu.subgroup_reduce add %3 cluster(size = 2) : (f32) -> f32
    %c0 = arith.constant 0 : index
    memref.store %4, %out[%c0] : memref<1xf32>
    gpu.return
  }
  gpu.func @lane_max(%x: f32, %out: memref<1xf32>) kernel {
    %0 = gpu.subgroup_reduce maximumf %x cluster(size = 2, stride = 2) : (f32) -> f32
    %1 = gpu.subgroup_reduce maximumf %0 cluster(size = 2) : (f32) -> f32
    %c0 = arith.constant 0 : index
    memref.store %1, %out[%c0] : memref<1xf32>
    gpu.return
  }
}
