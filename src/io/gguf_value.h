// GGUF metadata values: the 13 value types of the GGUF specification,
// including arrays (which may nest).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ffn {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

const char* gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::U32;
  // Exactly one of these is meaningful, chosen by `type`:
  uint64_t u = 0;        // U8, U16, U32, U64, BOOL
  int64_t i = 0;         // I8, I16, I32, I64
  double f = 0;          // F32, F64
  std::string s;         // STRING
  GgufType elem_type = GgufType::U8;  // ARRAY
  std::vector<GgufValue> array;       // ARRAY

  static GgufValue of_u32(uint32_t v) { GgufValue x; x.type = GgufType::U32; x.u = v; return x; }
  static GgufValue of_u64(uint64_t v) { GgufValue x; x.type = GgufType::U64; x.u = v; return x; }
  static GgufValue of_i32(int32_t v) { GgufValue x; x.type = GgufType::I32; x.i = v; return x; }
  static GgufValue of_f32(float v) { GgufValue x; x.type = GgufType::F32; x.f = v; return x; }
  static GgufValue of_bool(bool v) { GgufValue x; x.type = GgufType::BOOL; x.u = v; return x; }
  static GgufValue of_string(std::string v) { GgufValue x; x.type = GgufType::STRING; x.s = std::move(v); return x; }
  static GgufValue of_array(GgufType elem, std::vector<GgufValue> items) {
    GgufValue x; x.type = GgufType::ARRAY; x.elem_type = elem; x.array = std::move(items); return x;
  }

  bool is_integer() const;
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
  // Short human-readable rendering (arrays summarised) for `ffn inspect`.
  std::string to_display(size_t max_items = 8) const;
};

}  // namespace ffn
