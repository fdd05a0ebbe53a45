// Tensor: a dense row-major fp32 matrix [rows, cols] owned by the engine; the
// activations that flow between layers. (Weights are WeightTensor, io/.)
#pragma once

#include <cstdint>

#include "core/aligned_buffer.h"

namespace ffn {

struct Tensor {
  int64_t rows = 0;
  int64_t cols = 0;
  AlignedVector<float> data;

  Tensor() = default;
  Tensor(int64_t r, int64_t c) { resize(r, c); }

  // Keeps capacity: resizing to a smaller shape does not reallocate.
  void resize(int64_t r, int64_t c) {
    rows = r;
    cols = c;
    data.resize(static_cast<size_t>(r * c));
  }
  float* row(int64_t r) { return data.data() + r * cols; }
  const float* row(int64_t r) const { return data.data() + r * cols; }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
};

}  // namespace ffn
