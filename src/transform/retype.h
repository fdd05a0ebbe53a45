// Re-encodes the weight matrices of a model in another element type (F32,
// F16, BF16). 1-D tensors (norms) stay F32, as llama.cpp keeps them.
#pragma once

#include "core/dtype.h"
#include "io/model_source.h"

namespace ffn {

ModelSource retype(const ModelSource& src, DType type);

}  // namespace ffn
