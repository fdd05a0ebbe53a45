#include "kernels/convert.h"

#include <cstring>
#include <stdexcept>

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
    default:
      throw std::logic_error("encode_row: quantized types are encoded by the quantizer");
  }
}

}  // namespace ffn
