// Element-wise and row-wise transformer ops on fp32 rows. Most are plain
// loops that the compiler vectorises (none is on the bandwidth-critical
// path, the matrix products are); silu_mul needs a vector exp and has its
// own Highway file (silu_mul.cpp).
#pragma once

#include <cstdint>
#include <initializer_list>

namespace ffn {

// y = x / sqrt(mean(x^2) + eps) * weight, for one row of n.
void rmsnorm(const float* x, const float* weight, float* y, int64_t n, float eps);

// Sum (mod 2^64) of n words: a pure memory-read kernel at full vector width,
// used to measure read bandwidth (sum_words.cpp).
uint64_t sum_words(const uint64_t* p, int64_t n);

// In-place softmax of one row.
void softmax(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i]  (the SwiGLU product; silu_mul.cpp)
void silu_mul(float* gate, const float* up, int64_t n);
// out[i] = silu(gate[i]) * up[i], out apart from gate and up.
void silu_mul_into(const float* gate, const float* up, float* out, int64_t n);

// out[i] = silu(g[i]) = g[i] / (1 + exp(-g[i]))  (out may be g; silu_mul.cpp)
void silu(const float* g, float* out, int64_t n);

// Rows of n_rows x (sum of widths) split column-wise into the parts'
// buffers (each [n_rows, width]): the output of one product over matrices
// held side by side (concat_columns) back into one buffer per matrix.
struct ColumnPart {
  float* dst;
  int64_t width;
};
void split_columns(const float* src, int64_t n_rows, std::initializer_list<ColumnPart> parts);

// RoPE conventions. Interleaved ("normal", GGUF llama, llama2.c) rotates the
// pairs (x[2i], x[2i+1]); NeoX / rotate-half (Hugging Face) rotates
// (x[i], x[i + rot_dim/2]). Both by angle pos * base^(-2i / rot_dim).
enum class RopeStyle { Interleaved, NeoX };

// Rotates the first rot_dim elements of each of n_heads heads of head_dim in
// `x` (one token at position pos).
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          RopeStyle style);

// The same in two steps, so one position's angles serve every layer and both
// q and k (computed per call they were ~3 us of each decoded layer, on the
// thread the others wait for): cos_sin[i] = cos, cos_sin[rot_dim / 2 + i] =
// sin of pos * base^(-2i / rot_dim) (rot_dim floats), then the rotation.
void rope_angles(int64_t pos, int64_t rot_dim, float base, float* cos_sin);
void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos_sin,
                 RopeStyle style);

}  // namespace ffn
