//===- FuzzSupport.h - Shared helpers of the libFuzzer targets --*- C++ -*-===//
//
// Targets whose parser reads a file from a folder (an index, a manifest,
// generation_config.json) write each input into one scratch folder made at
// start-up. An input may only make the code under test throw qwen::rt::Error
// (or, for the compiler, return an llvm::Error); anything else (a crash, a
// sanitizer report, another exception) is a finding.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_FUZZ_FUZZSUPPORT_H
#define QWEN_FUZZ_FUZZSUPPORT_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace qwen::fuzz {

/// A scratch folder for the whole run, removed at exit.
inline const std::filesystem::path &scratchDir() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "qwen-fuzz-XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
      std::perror("qwen-fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratchDir(), ec);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

/// Writes the fuzzer's input to scratchDir()/name and returns its path.
inline std::string writeInput(const std::string &name, const uint8_t *data, size_t size) {
  std::string path = (scratchDir() / name).string();
  std::FILE *out = std::fopen(path.c_str(), "wb");
  if (!out || std::fwrite(data, 1, size, out) != size || std::fclose(out) != 0) {
    std::perror("qwen-fuzz: cannot write the input");
    std::abort();
  }
  return path;
}

} // namespace qwen::fuzz

#endif // QWEN_FUZZ_FUZZSUPPORT_H
