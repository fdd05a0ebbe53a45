#include "core/dtype.h"

#include <algorithm>
#include <cctype>

namespace ffn {

std::string dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
  }
  return "type#" + std::to_string(static_cast<uint32_t>(t));
}

std::optional<DType> parse_dtype(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0})
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

std::optional<DType> dtype_from_gguf(uint32_t id) {
  switch (id) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 8: return DType::Q8_0;
    case 30: return DType::BF16;
    default: return std::nullopt;
  }
}

size_t dtype_block_elems(DType t) {
  return (t == DType::Q8_0 || t == DType::Q4_0) ? 32 : 1;
}

size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8_0: return 2 + 32;      // fp16 scale + 32 int8
    case DType::Q4_0: return 2 + 16;      // fp16 scale + 32 nibbles
  }
  return 0;
}

bool dtype_row_ok(DType t, uint64_t n) { return n % dtype_block_elems(t) == 0; }

uint64_t dtype_row_bytes(DType t, uint64_t n) {
  return n / dtype_block_elems(t) * dtype_block_bytes(t);
}

}  // namespace ffn
