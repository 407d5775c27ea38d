//===- cuda_driver.h - The CUDA driver API, loaded at run time --*- C++ -*-===//
//
// The runtime links no CUDA library: it dlopens the driver (libcuda.so.1,
// or $QWEN_CUDA_DRIVER) when asked, so the same binary starts and runs on
// machines without an NVIDIA driver. This is the first piece of the CUDA
// device (issue 3): finding the driver and its devices. Every call is checked
// and a failure is an Error naming the call and the driver's message.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CUDA_DRIVER_H
#define QWEN_RT_CUDA_DRIVER_H

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

  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

private:
  CudaDriver() = default;
  void load();

  void *Library = nullptr;
  int Version = 0;
  std::vector<CudaDeviceInfo> Devices;
};

} // namespace qwen::rt

#endif // QWEN_RT_CUDA_DRIVER_H
