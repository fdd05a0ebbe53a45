#include "kernels/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "kernels/quant_blocks.h"

namespace ffn {

namespace {

// 16-bit element rows (F16, BF16); memcpy because file data may be unaligned.
void decode_16bit(const uint8_t* src, float* dst, uint64_t n, float (*to_f32)(uint16_t)) {
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = to_f32(h);
  }
}
void encode_16bit(const float* src, uint8_t* dst, uint64_t n, uint16_t (*from_f32)(float)) {
  for (uint64_t i = 0; i < n; ++i) {
    const uint16_t h = from_f32(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

// roundf (halves away from zero, as GGUF's quantize_row_q8_0 rounds) for
// |v| < 2^31 without the libm call, so that the block loop vectorises
// (roundf was a third of the time of transposing TinyLlama's Q8_0 matrices
// for TEAL at load). Exact: v - trunc(v) is representable.
inline int32_t round_half_away(float v) {
  const int32_t t = static_cast<int32_t>(v);
  const float frac = v - static_cast<float>(t);
  return t + (frac >= 0.5f) - (frac <= -0.5f);
}

}  // namespace

void dequantize_row(DType t, const uint8_t* src, float* dst, uint64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::F16:
      return decode_16bit(src, dst, n, f16_to_f32);
    case DType::BF16:
      return decode_16bit(src, dst, n, bf16_to_f32);
    case DType::Q8_0:
      for (uint64_t b = 0; b < n / kQuantBlock; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ8_0), sizeof blk);
        const float d = f16_to_f32(blk.d);
        for (int j = 0; j < kQuantBlock; ++j) dst[b * kQuantBlock + j] = d * blk.qs[j];
      }
      return;
    case DType::Q4_0:
      for (uint64_t b = 0; b < n / kQuantBlock; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ4_0), sizeof blk);
        const float d = f16_to_f32(blk.d);
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          dst[b * kQuantBlock + j] = d * ((blk.qs[j] & 0x0f) - 8);
          dst[b * kQuantBlock + j + 16] = d * ((blk.qs[j] >> 4) - 8);
        }
      }
      return;
  }
}

void encode_row(DType t, const float* src, uint8_t* dst, uint64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::F16:
      return encode_16bit(src, dst, n, f32_to_f16);
    case DType::BF16:
      return encode_16bit(src, dst, n, f32_to_bf16);
    case DType::Q8_0:
      for (uint64_t b = 0; b < n / kQuantBlock; ++b) {
        const float* x = src + b * kQuantBlock;
        float amax = 0.0f;
        for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ8_0 blk;
        blk.d = f32_to_f16(d);
        // |x * id| <= 127 (plus rounding): in range for round_half_away.
        for (int j = 0; j < kQuantBlock; ++j) blk.qs[j] = static_cast<int8_t>(round_half_away(x[j] * id));
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    case DType::Q4_0:
      for (uint64_t b = 0; b < n / kQuantBlock; ++b) {
        const float* x = src + b * kQuantBlock;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQuantBlock; ++j)
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ4_0 blk;
        blk.d = f32_to_f16(d);
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          const uint8_t lo = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x[j] * id + 8.5f)));
          const uint8_t hi = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x[j + 16] * id + 8.5f)));
          blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
      return;
  }
}

}  // namespace ffn
