// One query head's attention over the positions in a KV cache, in one call.
//
// Decode spends its attention time in per-position work: a dot product per
// cached key, an exp, and an axpy per cached value. Called per position
// through the dispatched dot/axpy, the call overhead and a scalar exp cost
// more than the arithmetic (27% of a TinyLlama Q4_0 decode step at ~500
// tokens of context). This kernel runs the three steps as loops over all
// positions with the vector ISA picked at run time (Highway).
#pragma once

#include <cstdint>

namespace ffn {

// out[0..head_dim) = sum_j p_j v_j with p = softmax_j(scale * q . k_j), over
// positions j in [0, n_pos); k_j = keys + j * stride, v_j = values + j *
// stride (the cache's rows hold every KV head side by side). `scores` is
// scratch of n_pos floats. n_pos >= 1.
void attend_head(const float* q, const float* keys, const float* values, int64_t stride, int64_t n_pos,
                 int64_t head_dim, float scale, float* scores, float* out);

// The same product in plain double-precision loops: the tests' reference.
void attend_head_reference(const float* q, const float* keys, const float* values, int64_t stride,
                           int64_t n_pos, int64_t head_dim, float scale, float* out);

}  // namespace ffn
