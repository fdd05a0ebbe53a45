// Element-type conversion of weight rows: any stored type -> fp32, and fp32
// -> F32/F16/BF16. Scalar and exact (these are the reference definitions; the
// fast kernels decode inside their inner loops instead).
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace ffn {

// Decodes n elements (n a multiple of the block size) of type t at src.
void dequantize_row(DType t, const uint8_t* src, float* dst, uint64_t n);

// Encodes n floats as t (F32, F16 or BF16; quantized types come with the
// quantization kernels). dst must hold dtype_row_bytes(t, n) bytes.
void encode_row(DType t, const float* src, uint8_t* dst, uint64_t n);

}  // namespace ffn
