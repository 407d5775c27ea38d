//===- error.h - Runtime error type -----------------------------*- C++ -*-===//
//
// Every failure the runtime reports to a user is a qwen::rt::Error whose
// message says what was wrong and where (file, tensor, token id, ...).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_ERROR_H
#define QWEN_RT_ERROR_H

#include <stdexcept>
#include <string>

namespace qwen::rt {

/// A user-facing runtime error. The message is complete on its own.
class Error : public std::runtime_error {
public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

} // namespace qwen::rt

#endif // QWEN_RT_ERROR_H
