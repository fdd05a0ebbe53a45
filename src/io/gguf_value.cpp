#include "io/gguf_value.h"

#include <fmt/format.h>

namespace ffn {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64:
      return true;
    default:
      return false;
  }
}

std::string GgufValue::to_display(size_t max_items) const {
  switch (type) {
    case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64:
      return std::to_string(u);
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64:
      return std::to_string(i);
    case GgufType::F32: case GgufType::F64:
      return fmt::format("{:g}", f);
    case GgufType::BOOL:
      return u ? "true" : "false";
    case GgufType::STRING: {
      std::string t = s.size() > 60 ? s.substr(0, 57) + "..." : s;
      return fmt::format("\"{}\"", t);
    }
    case GgufType::ARRAY: {
      std::string out = fmt::format("{}[{}] [", gguf_type_name(elem_type), array.size());
      for (size_t k = 0; k < array.size() && k < max_items; ++k)
        out += (k ? ", " : "") + array[k].to_display(max_items);
      if (array.size() > max_items) out += ", ...";
      return out + "]";
    }
  }
  return "?";
}

}  // namespace ffn
