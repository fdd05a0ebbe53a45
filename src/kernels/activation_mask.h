// Vector kernels behind the activation-sparsity masks (ffn/sparse_activations.h):
// which entries of activations x [n_tok, width] a rule keeps, their union
// over the tokens, the masked rows and the packed form.
//
// Why vectors: these passes run on the calling thread between two products
// while the other threads wait. As branch-free scalar loops they were ~10%
// of the samples of a TinyLlama TEAL prefill (perf, 128 tokens, 2 threads),
// i.e. most of the gap to dense prefill.
#pragma once

#include <cstdint>

namespace ffn {

// Entry (t, j) is kept when keep != null ? keep[t * width + j] != 0
// : |x[t, j]| > (channel_thresholds ? channel_thresholds[j] : threshold).
// A NaN is never kept.
struct KeepRule {
  float threshold = 0;
  const float* channel_thresholds = nullptr;  // CHESS: one threshold per channel
  const uint8_t* keep = nullptr;              // a mask decided elsewhere (CATS's gate rules)
};

struct KeptCounts {
  uint64_t kept = 0;       // entries kept over all tokens
  int64_t union_size = 0;  // channels some token keeps
};

// in_union[j] = -1 where some token keeps channel j, else 0.
KeptCounts mark_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, int32_t* in_union);

// One token (decode): the channels of x [width] the rule keeps, ascending,
// into kept_ids (room for width); returns their count. One pass, no union
// flags: for a single token the union is its own kept set.
int64_t kept_ids(const float* x, int64_t width, const KeepRule& rule, int32_t* kept_ids);

// active (skipped when null): the channels with in_union[j] != 0, ascending
// (union_size of them); values[t * union_size + k] = x[t, active[k]] where
// token t keeps it, else +0 (nothing when n_tok is 0). in_union may be null
// when n_tok is 1: the union is then the token's own kept set (kept_ids).
void pack_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, const int32_t* in_union,
               int64_t union_size, int32_t* active, float* values);

// out[t * width + j] = x[t, j] where kept, else +0 (the masked rows a batch
// multiplies densely).
void mask_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, float* out);

}  // namespace ffn
