//===- cuda_driver_test.cpp - Loading the CUDA driver at run time ---------===//
//
// Without an NVIDIA driver the runtime must still start: CudaDriver::get()
// reports why there is no GPU instead of failing to link or crashing. The
// driver is loaded once per process, so each test runs as its own process
// under ctest (gtest_discover_tests) and only the first get() of a process
// decides; the test forces the driver path through $QWEN_CUDA_DRIVER.
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/cuda_driver.h"
#include "qwen_rt/error.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace qwen::rt;

TEST(CudaDriverTest, MissingDriverIsAClearErrorEveryTime) {
  setenv("QWEN_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      CudaDriver::get();
      FAIL() << "a driver loaded from a path that does not exist";
    } catch (const Error &e) {
      std::string message = e.what();
      EXPECT_NE(message.find("cannot load the CUDA driver (/nonexistent/libcuda.so.1: "), std::string::npos)
          << message;
      EXPECT_NE(message.find("CPU artifacts run without one"), std::string::npos) << message;
    }
  }
}
