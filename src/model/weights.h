// Turning file tensors into compute weights, with the shape and type checks
// that make a hostile file an error instead of an out-of-bounds read.
#pragma once

#include <string>
#include <vector>

#include "io/model_source.h"
#include "kernels/weight_matrix.h"

namespace ffn {

// Checks that `name` exists with shape [rows, cols] and returns it as a
// WeightMatrix in its stored type, used in place (mmap). fp32 data that is
// not 4-byte aligned (possible in safetensors) is copied to aligned memory.
WeightMatrix load_matrix(const ModelSource& src, const std::string& name, int64_t rows, int64_t cols);

// A 3-D tensor [blocks, rows, cols] (e.g. experts stacked) as one matrix
// [blocks * rows, cols]; block b is rows b*rows .. (b+1)*rows - 1.
WeightMatrix load_stacked_matrix(const ModelSource& src, const std::string& name, int64_t blocks, int64_t rows,
                                 int64_t cols);

// Files written for activation sparsity store some matrices transposed (one
// row per input, so a skipped input skips a contiguous row) under this name:
// "blk.3.ffn_down.weight" -> "blk.3.ffn_down_t.weight".
std::string transposed_tensor_name(const std::string& name);

// Checks shape [n] and returns the values as fp32.
std::vector<float> load_vector(const ModelSource& src, const std::string& name, int64_t n);
// Any shape, checked, as fp32 in row-major order.
std::vector<float> load_floats(const ModelSource& src, const std::string& name, const std::vector<uint64_t>& shape);

}  // namespace ffn
