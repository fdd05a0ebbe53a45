// ffn::Error — the one exception type of the engine.
//
// Every failure caused by input data (a file, a flag, a text) is reported as an
// Error whose message names where it happened (usually a file), the field that
// was wrong, what was expected and what was found. The CLI prints what() on one
// line and exits 1, so the message must stand on its own.
#pragma once

#include <stdexcept>
#include <string>

namespace ffn {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// "<where>: <field>: expected <expected>, found <found>"
[[noreturn]] void fail(const std::string& where, const std::string& field,
                       const std::string& expected, const std::string& found);

// "<where>: <message>"
[[noreturn]] void fail(const std::string& where, const std::string& message);

}  // namespace ffn
