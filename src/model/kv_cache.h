// Key/value cache of one sequence: per layer, [capacity, kv_dim] keys and
// values (post-RoPE keys).
#pragma once

#include <cstdint>

#include "core/aligned_buffer.h"

namespace ffn {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t capacity, int64_t kv_dim);

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return n_past_; }  // positions filled
  void clear() { n_past_ = 0; }
  void advance(int64_t n) { n_past_ += n; }

  float* key(int64_t layer, int64_t pos) { return k_.data() + (layer * capacity_ + pos) * kv_dim_; }
  float* value(int64_t layer, int64_t pos) { return v_.data() + (layer * capacity_ + pos) * kv_dim_; }
  // Floats from one position's keys (or values) to the next.
  int64_t row_stride() const { return kv_dim_; }

 private:
  int64_t capacity_, kv_dim_;
  int64_t n_past_ = 0;
  AlignedVector<float> k_, v_;
};

}  // namespace ffn
