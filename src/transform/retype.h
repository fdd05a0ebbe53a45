// Re-encodes the weight matrices of a model in another element type: F32,
// F16, BF16, or the GGUF block quantizations Q8_0 and Q4_0 (bit-identical to
// ggml's reference quantizers, kernels/convert.h).
//
// As llama.cpp does: 1-D tensors (norms) and mixture-of-experts routers stay
// F32, 3-D tensors (stacked experts) are encoded row by row, and a matrix whose rows
// are not a multiple of the 32-weight block falls back to F16.
#pragma once

#include "core/dtype.h"
#include "io/model_source.h"

namespace ffn {

ModelSource retype(const ModelSource& src, DType type);

}  // namespace ffn
