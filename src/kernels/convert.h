// Element-type conversion of weight rows: any stored type -> fp32, and fp32
// -> any type. Scalar and exact: these are the reference definitions (the
// fast kernels decode inside their inner loops instead).
//
// Quantization follows ggml's reference quantizers bit for bit, so a file we
// write is the file llama.cpp would write from the same fp32 weights:
//   Q8_0: d = max|x| / 127, q = round(x / d)            (round half away from 0)
//   Q4_0: m = the x of largest |x| (sign kept), d = m / -8,
//         q = min(15, (int8)(x / d + 8.5))
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace ffn {

// Decodes n elements (n a multiple of the block size) of type t at src.
void dequantize_row(DType t, const uint8_t* src, float* dst, uint64_t n);

// Encodes n floats as t (n a multiple of the block size). dst must hold
// dtype_row_bytes(t, n) bytes.
void encode_row(DType t, const float* src, uint8_t* dst, uint64_t n);

}  // namespace ffn
