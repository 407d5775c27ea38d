//===- cuda_driver.cpp - The CUDA driver and cuBLASLt, loaded at run time -===//
#include "qwen_rt/cuda_driver.h"

#include "qwen_rt/error.h"

#include <dlfcn.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>

namespace qwen::rt {

using namespace cuda;

namespace {
template <typename Fn>
void resolve(void *library, const char *name, Fn &slot, const std::string &what) {
  slot = reinterpret_cast<Fn>(dlsym(library, name));
  if (!slot)
    throw Error(what + " has no " + name + "; the runtime needs CUDA 12 or newer");
}

/// dlopens the first of `candidates` that loads; throws with every reason.
void *openFirst(const std::vector<std::string> &candidates, std::string &opened, const std::string &what,
                const std::string &hint) {
  std::string reasons;
  for (const std::string &path : candidates) {
    if (void *library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      opened = path;
      return library;
    }
    const char *why = dlerror();
    reasons += (reasons.empty() ? "" : "; ") + path + ": " + (why ? why : "unknown dlopen error");
  }
  throw Error("cannot load " + what + " (" + reasons + ")" + hint);
}

std::vector<std::string> candidatesFrom(const char *variable, std::vector<std::string> defaults) {
  const char *override = std::getenv(variable);
  if (override && *override)
    return {override};
  return defaults;
}

/// Runs `load` once per process; a failure is remembered and thrown again.
template <typename T>
const T &loadOnce(std::once_flag &once, std::unique_ptr<T> &instance, std::string &failure,
                  const std::function<T *()> &make) {
  std::call_once(once, [&] {
    try {
      instance.reset(make());
    } catch (const Error &error) {
      failure = error.what();
    }
  });
  if (!instance)
    throw Error(failure);
  return *instance;
}
} // namespace

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

void CudaDriver::check(CUresult result, const char *call) const {
  if (result == CUDA_SUCCESS)
    return;
  const char *message = nullptr;
  if (Api.cuGetErrorString)
    Api.cuGetErrorString(result, &message);
  throw Error(std::string("CUDA driver call ") + call + " failed: " + (message ? message : "unknown error") +
              " (CUresult " + std::to_string(result) + ")");
}

void CudaDriver::load() {
  Library = openFirst(candidatesFrom("QWEN_CUDA_DRIVER", {"libcuda.so.1"}), Path, "the CUDA driver",
                      ": no NVIDIA driver on this machine; CPU artifacts run without one");
  std::string what = "the CUDA driver " + Path;
#define QWEN_RESOLVE(member, symbol) resolve(Library, symbol, Api.member, what);
  QWEN_CUDA_DRIVER_ENTRY_POINTS(QWEN_RESOLVE)
#undef QWEN_RESOLVE
  check(Api.cuInit(0), "cuInit");
  check(Api.cuDriverGetVersion(&Version), "cuDriverGetVersion");
  int count = 0;
  check(Api.cuDeviceGetCount(&count), "cuDeviceGetCount");
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    CUdevice device = 0;
    check(Api.cuDeviceGet(&device, ordinal), "cuDeviceGet");
    CudaDeviceInfo info;
    info.ordinal = ordinal;
    char name[256] = {};
    check(Api.cuDeviceGetName(name, int(sizeof(name)), device), "cuDeviceGetName");
    info.name = name;
    size_t bytes = 0;
    check(Api.cuDeviceTotalMem(&bytes, device), "cuDeviceTotalMem");
    info.memoryBytes = bytes;
    check(Api.cuDeviceGetAttribute(&info.computeMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
          "cuDeviceGetAttribute");
    check(Api.cuDeviceGetAttribute(&info.computeMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
          "cuDeviceGetAttribute");
    check(Api.cuDeviceGetAttribute(&info.multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
          "cuDeviceGetAttribute");
    Devices.push_back(info);
  }
}

const CudaDriver &CudaDriver::get() {
  static std::once_flag once;
  static std::unique_ptr<CudaDriver> driver;
  static std::string failure;
  return loadOnce<CudaDriver>(once, driver, failure, [] {
    std::unique_ptr<CudaDriver> loading(new CudaDriver());
    loading->load();
    return loading.release();
  });
}

//===----------------------------------------------------------------------===//
// cuBLASLt
//===----------------------------------------------------------------------===//

void CublasLt::check(cublasStatus_t status, const char *call) const {
  if (status == CUBLAS_STATUS_SUCCESS)
    return;
  const char *message = Api.cublasLtGetStatusString ? Api.cublasLtGetStatusString(status) : nullptr;
  throw Error(std::string("cuBLASLt call ") + call + " failed: " + (message ? message : "unknown error") +
              " (status " + std::to_string(status) + ")");
}

void CublasLt::load() {
  Library = openFirst(candidatesFrom("QWEN_CUBLASLT", {"libcublasLt.so.13", "libcublasLt.so.12"}), Path,
                      "cuBLASLt", ": the CUDA artifact's GEMMs need it (install the CUDA toolkit's libcublas, "
                                  "or point $QWEN_CUBLASLT at libcublasLt.so)");
  std::string what = "cuBLASLt " + Path;
#define QWEN_RESOLVE(member, symbol) resolve(Library, symbol, Api.member, what);
  QWEN_CUBLASLT_ENTRY_POINTS(QWEN_RESOLVE)
#undef QWEN_RESOLVE
}

const CublasLt &CublasLt::get() {
  static std::once_flag once;
  static std::unique_ptr<CublasLt> library;
  static std::string failure;
  return loadOnce<CublasLt>(once, library, failure, [] {
    std::unique_ptr<CublasLt> loading(new CublasLt());
    loading->load();
    return loading.release();
  });
}

} // namespace qwen::rt
