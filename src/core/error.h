// qsearch::Error: the one exception type of the project.
//
// Thrown only at set-up and I/O boundaries (ONNX import, TOML, data files, SQLite, plan()).
// Kernels and the executor loop never throw (see check.h). Context is appended while the error
// travels up, ONNX-checker style:
//
//   try { import_node(n); }
//   catch (Error& e) { e.add_context(fmt::format("while importing node '{}'", n.name())); throw; }
//
// what() prints the message, then each context on its own line, innermost first.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace qsearch {

class Error : public std::exception {
 public:
  explicit Error(std::string message) : message_(std::move(message)) { rebuild(); }

  // Appends "  <context>" as a new line of what(). Returns *this so it can be rethrown.
  Error& add_context(const std::string& context) {
    context_.push_back(context);
    rebuild();
    return *this;
  }

  const char* what() const noexcept override { return full_.c_str(); }
  const std::string& message() const { return message_; }
  const std::vector<std::string>& context() const { return context_; }

 private:
  void rebuild() {
    full_ = message_;
    for (const auto& c : context_) full_ += "\n  " + c;
  }
  std::string message_;
  std::vector<std::string> context_;
  std::string full_;
};

// Throws qsearch::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace qsearch
