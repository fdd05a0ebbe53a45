// Matrix products: Y[t, o] = sum_i X[t, i] * W[o, i], for weights stored as
// F32, F16, BF16 (matmul_dense, here) or Q8_0, Q4_0 (matmul_quant.h).
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
#include <functional>

#include "core/dtype.h"

namespace ffn {

class ThreadPool;

// Fast path for F32, F16 and BF16 weights (w: n_out rows of n_in elements).
void matmul_dense(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w,
                  int64_t n_out, float* y, ThreadPool& pool);

// The single-threaded body of matmul_dense: output rows [r0, r1) (weight
// rows r0..r1 of w) for all tokens, written to y[t * y_stride + r].
void matmul_dense_rows(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1);

// The listed rows of w (F32, F16, BF16; n_in elements each, `pitch` bytes
// from one row's start to the next, 0: adjacent rows) for all tokens,
// single-threaded: y[t * y_stride + i] = sum_k x[t, k] * w[rows[i], k].
void matmul_dense_gather(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w, uint64_t pitch,
                         const int32_t* rows, int64_t n, float* y, int64_t y_stride);

// Scalar reference for any weight type: decode each row exactly
// (dequantize_row), accumulate in double. The ground truth for tests.
void matmul_reference(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                      int64_t n_out, float* y);

// Runs rows(r0, r1) over a split of [0, n_out) into chunks of multiples of 4
// rows across the pool, or on the calling thread when the product is small.
void for_each_row_chunk(int64_t n_tok, int64_t n_in, int64_t n_out, ThreadPool& pool,
                        const std::function<void(int64_t, int64_t)>& rows);

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
