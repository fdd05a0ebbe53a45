#include "core/error.h"

namespace ffn {

void fail(const std::string& where, const std::string& field, const std::string& expected,
          const std::string& found) {
  throw Error(where + ": " + field + ": expected " + expected + ", found " + found);
}

void fail(const std::string& where, const std::string& message) {
  throw Error(where + ": " + message);
}

}  // namespace ffn
