//===- cuda_driver.cpp - The CUDA driver API, loaded at run time ----------===//
#include "qwen_rt/cuda_driver.h"

#include "qwen_rt/error.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>

namespace qwen::rt {

namespace {
// The few driver API declarations used here (cuda.h is not needed to build).
using CUresult = int;
using CUdevice = int;
constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

struct DriverApi {
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int *) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t *, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
};

template <typename Fn>
void resolve(void *library, const char *name, Fn &slot, const std::string &path) {
  slot = reinterpret_cast<Fn>(dlsym(library, name));
  if (!slot)
    throw Error("the CUDA driver " + path + " has no " + name + "; is it older than CUDA 12?");
}
} // namespace

void CudaDriver::load() {
  const char *override = std::getenv("QWEN_CUDA_DRIVER");
  std::string path = override && *override ? override : "libcuda.so.1";
  Library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!Library) {
    const char *why = dlerror();
    throw Error("cannot load the CUDA driver " + path + " (" + (why ? why : "unknown dlopen error") +
                "): no NVIDIA driver on this machine; CPU artifacts run without one");
  }
  DriverApi api;
  resolve(Library, "cuInit", api.cuInit, path);
  resolve(Library, "cuDriverGetVersion", api.cuDriverGetVersion, path);
  resolve(Library, "cuDeviceGetCount", api.cuDeviceGetCount, path);
  resolve(Library, "cuDeviceGet", api.cuDeviceGet, path);
  resolve(Library, "cuDeviceGetName", api.cuDeviceGetName, path);
  resolve(Library, "cuDeviceTotalMem_v2", api.cuDeviceTotalMem, path);
  resolve(Library, "cuDeviceGetAttribute", api.cuDeviceGetAttribute, path);
  resolve(Library, "cuGetErrorString", api.cuGetErrorString, path);
  auto check = [&](CUresult result, const char *call) {
    if (result == CUDA_SUCCESS)
      return;
    const char *message = nullptr;
    api.cuGetErrorString(result, &message);
    throw Error(std::string("CUDA driver call ") + call + " failed: " + (message ? message : "unknown error") +
                " (CUresult " + std::to_string(result) + ")");
  };
  check(api.cuInit(0), "cuInit");
  check(api.cuDriverGetVersion(&Version), "cuDriverGetVersion");
  int count = 0;
  check(api.cuDeviceGetCount(&count), "cuDeviceGetCount");
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    CUdevice device = 0;
    check(api.cuDeviceGet(&device, ordinal), "cuDeviceGet");
    CudaDeviceInfo info;
    info.ordinal = ordinal;
    char name[256] = {};
    check(api.cuDeviceGetName(name, int(sizeof(name)), device), "cuDeviceGetName");
    info.name = name;
    size_t bytes = 0;
    check(api.cuDeviceTotalMem(&bytes, device), "cuDeviceTotalMem");
    info.memoryBytes = bytes;
    check(api.cuDeviceGetAttribute(&info.computeMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
          "cuDeviceGetAttribute");
    check(api.cuDeviceGetAttribute(&info.computeMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
          "cuDeviceGetAttribute");
    check(api.cuDeviceGetAttribute(&info.multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
          "cuDeviceGetAttribute");
    Devices.push_back(info);
  }
}

const CudaDriver &CudaDriver::get() {
  // Loaded once; a failure is remembered and reported again on every call.
  static std::once_flag once;
  static std::unique_ptr<CudaDriver> driver;
  static std::string failure;
  std::call_once(once, [] {
    std::unique_ptr<CudaDriver> loading(new CudaDriver());
    try {
      loading->load();
      driver = std::move(loading);
    } catch (const Error &error) {
      failure = error.what();
    }
  });
  if (!driver)
    throw Error(failure);
  return *driver;
}

} // namespace qwen::rt
