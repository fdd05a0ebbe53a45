#include "kernels/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "kernels/quant_blocks.h"

namespace ffn {

void dequantize_row(DType t, const uint8_t* src, float* dst, uint64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::F16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
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
      for (uint64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (uint64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0:
      for (uint64_t b = 0; b < n / kQuantBlock; ++b) {
        const float* x = src + b * kQuantBlock;
        float amax = 0.0f;
        for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ8_0 blk;
        blk.d = f32_to_f16(d);
        for (int j = 0; j < kQuantBlock; ++j) blk.qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
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
