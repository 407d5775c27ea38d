//===- cuda_driver.h - The CUDA driver and cuBLASLt, loaded at run time ---===//
//
// The runtime links no CUDA library: it dlopens the driver (libcuda.so.1, or
// $QWEN_CUDA_DRIVER) and cuBLASLt (libcublasLt.so.13 / .12, or
// $QWEN_CUBLASLT) when a CUDA artifact is loaded, so the same binary starts
// and runs CPU artifacts on machines without an NVIDIA driver. Every call is
// checked: a failure is an Error naming the call and the library's message.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CUDA_DRIVER_H
#define QWEN_RT_CUDA_DRIVER_H

#include "qwen_rt/cuda_api.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qwen::rt {

struct CudaDeviceInfo {
  int ordinal = 0;
  std::string name;
  int computeMajor = 0, computeMinor = 0;
  int multiprocessors = 0;
  uint64_t memoryBytes = 0;
  /// "sm_90" for compute capability 9.0.
  std::string arch() const { return "sm_" + std::to_string(computeMajor) + std::to_string(computeMinor); }
};

class CudaDriver {
public:
  /// Loads and initializes the driver (once per process). Throws Error with
  /// the reason when there is no usable driver.
  static const CudaDriver &get();

  /// The driver's CUDA version, e.g. 13000 for 13.0.
  int version() const { return Version; }
  const std::vector<CudaDeviceInfo> &devices() const { return Devices; }
  const cuda::DriverApi &api() const { return Api; }
  /// Throws Error("CUDA driver call <call> failed: <message> (CUresult N)")
  /// unless `result` is CUDA_SUCCESS.
  void check(cuda::CUresult result, const char *call) const;

  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

private:
  CudaDriver() = default;
  void load();

  void *Library = nullptr;
  std::string Path;
  cuda::DriverApi Api;
  int Version = 0;
  std::vector<CudaDeviceInfo> Devices;
};

class CublasLt {
public:
  /// Loads cuBLASLt (once per process). Throws Error when it cannot.
  static const CublasLt &get();
  const cuda::CublasLtApi &api() const { return Api; }
  const std::string &path() const { return Path; }
  /// Throws Error("cuBLASLt call <call> failed: <message> (status N)").
  void check(cuda::cublasStatus_t status, const char *call) const;

  CublasLt(const CublasLt &) = delete;
  CublasLt &operator=(const CublasLt &) = delete;

private:
  CublasLt() = default;
  void load();

  void *Library = nullptr;
  std::string Path;
  cuda::CublasLtApi Api;
};

} // namespace qwen::rt

#endif // QWEN_RT_CUDA_DRIVER_H
