// Block formats of the quantized weight types, byte-identical to GGUF/ggml
// (block_q8_0, block_q4_0) so files move between engines unchanged.
//
//   Q8_0: 32 weights = fp16 scale d, 32 x int8 q;         w = d * q
//   Q4_0: 32 weights = fp16 scale d, 16 bytes of nibbles;  w = d * (nibble - 8)
//         byte j holds weight j in its low nibble and weight j + 16 in its high.
#pragma once

#include <cstdint>

namespace ffn {

constexpr int kQuantBlock = 32;

struct BlockQ8_0 {
  uint16_t d;  // fp16 bits
  int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;  // fp16 bits
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

}  // namespace ffn
