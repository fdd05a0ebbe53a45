#include "io/architectures.h"

#include <iterator>

namespace ffn {

namespace {
const char* const kArchitectures[] = {"llama", "qwen2", "qwen2moe"};
}

bool is_supported_architecture(const std::string& arch) {
  for (const char* a : kArchitectures)
    if (arch == a) return true;
  return false;
}

std::string supported_architectures() {
  std::string s;
  const size_t n = std::size(kArchitectures);
  for (size_t i = 0; i < n; ++i)
    s += (i == 0 ? "" : i + 1 == n ? " or " : ", ") + std::string("\"") + kArchitectures[i] + "\"";
  return s;
}

bool uses_neox_rope(const std::string& arch) { return arch == "qwen2" || arch == "qwen2moe"; }

}  // namespace ffn
