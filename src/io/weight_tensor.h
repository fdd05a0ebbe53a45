// WeightTensor: a named, typed view of weight bytes that live in a memory
// mapping or in a buffer owned by the ModelSource that holds the view.
//
// Shapes are in row-major ("numpy") order: a matrix that maps d_in to d_out is
// [d_out, d_in], one output per row. (GGUF lists dimensions fastest first;
// the GGUF reader and writer reverse them.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace ffn {

struct WeightTensor {
  std::string name;
  DType type = DType::F32;
  std::vector<uint64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;

  uint64_t elements() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    return n;
  }
  uint64_t rows() const { return shape.size() < 2 ? 1 : elements() / shape.back(); }
  uint64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  std::string shape_string() const;
};

}  // namespace ffn
