// Building the new tensors of a transformed model: matrices decoded to fp32
// and encoded back, and tensors whose bytes the ModelSource keeps alive.
// Shared by the FFN transforms (dense -> MoE, upcycling, averaging).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/model_source.h"
#include "kernels/weight_matrix.h"

namespace ffn {

// w decoded to fp32, [rows, cols] row-major.
std::vector<float> decode_matrix(const WeightMatrix& w);

// f [rows, cols] encoded row by row as `type`.
std::shared_ptr<std::vector<uint8_t>> encode_matrix(const std::vector<float>& f, int64_t rows, int64_t cols,
                                                    DType type);

// Adds tensor `name` viewing `bytes`, which `out` then owns.
void add_owned_tensor(ModelSource& out, std::string name, DType type, std::vector<uint64_t> shape,
                      std::shared_ptr<std::vector<uint8_t>> bytes);

}  // namespace ffn
