// WeightMatrix: a [rows, cols] weight in the type the kernels compute with,
// plus matmul() which picks the kernel for that type. Layers hold
// WeightMatrix values and never ask which kernel runs.
//
// Today every matrix is fp32 (other stored types are decoded once at load);
// quantized kernels plug in here by type without touching any layer.
#pragma once

#include <cstdint>
#include <memory>

#include "core/aligned_buffer.h"
#include "core/dtype.h"

namespace ffn {

class ThreadPool;

struct WeightMatrix {
  DType type = DType::F32;
  int64_t rows = 0;  // outputs
  int64_t cols = 0;  // inputs
  const float* data = nullptr;
  std::shared_ptr<const AlignedVector<float>> owned;  // set when decoded at load

  uint64_t bytes() const { return uint64_t(rows) * cols * 4; }
  const float* row(int64_t r) const { return data + r * cols; }
};

// y[n_tok, rows] = x[n_tok, cols] * W^T
void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

}  // namespace ffn
