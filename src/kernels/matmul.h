// Matrix products against fp32 weights: Y[t, o] = sum_i X[t, i] * W[o, i].
//
// W is [n_out, n_in] row-major (one output per row, the layout of every
// weight file we read), X is [n_tok, n_in], Y is [n_tok, n_out]. One function
// serves decode (n_tok = 1, a matrix-vector product) and prefill (a
// matrix-matrix product): the fast path tiles several tokens against several
// weight rows so each weight row is read once per tile of tokens.
//
// Kernels trust their callers: shapes are checked where tensors are built.
#pragma once

#include <cstdint>

namespace ffn {

class ThreadPool;

// Fast path: Highway SIMD with runtime ISA dispatch, rows split over `pool`.
void matmul_f32(const float* x, int64_t n_tok, int64_t n_in, const float* w, int64_t n_out,
                float* y, ThreadPool& pool);

// Plain scalar reference (double accumulation), the ground truth for tests.
void matmul_f32_reference(const float* x, int64_t n_tok, int64_t n_in, const float* w,
                          int64_t n_out, float* y);

// Dot product of two fp32 vectors (SIMD), used by attention.
float dot_f32(const float* a, const float* b, int64_t n);

// y[i] += a * x[i] (SIMD), used by attention to mix values.
void axpy_f32(float a, const float* x, float* y, int64_t n);

}  // namespace ffn
