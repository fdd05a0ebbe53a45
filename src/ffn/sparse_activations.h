// Activation masks and their packed form, shared by every activation-sparse
// variant (TEAL, CATS, CHESS, statistical top-k).
//
// A batch of n tokens is packed as the UNION of the channels any token keeps
// (`active`) plus each token's values on that union, zero where the token
// itself dropped the channel. Input-sparse products then read each active
// weight row once for the whole batch, and one token (decode) reads exactly
// its own active rows. Per-token semantics are exact either way: a dropped
// value contributes 0, as in the masked dense product.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/activation_mask.h"

namespace ffn {

struct SparseActivations {
  int64_t n_tok = 0;
  int64_t width = 0;            // channels per token before packing
  std::vector<int32_t> active;  // ascending channel ids
  std::vector<float> values;    // [n_tok, active.size()]
  uint64_t kept = 0;            // token-channel pairs kept
  uint64_t seen = 0;            // token-channel pairs seen
  // select_kept's scratch: several tokens, -1 on the union's channels
  // (union_flags); one token, its kept ids (then the union is its mask).
  std::vector<int32_t> in_union;
  bool union_flags = false;

  int64_t n_active() const { return static_cast<int64_t>(active.size()); }
};

// In two steps, so a batch that runs dense on its masked rows
// (ffn/sparse_batch.h) never packs values:
//  1. select_kept: the union of the channels the tokens keep under `rule`
//     (kernels/activation_mask.h) into out.active, and out.kept / out.seen;
//     out.values is stale until step 2 (kept, not cleared: refilling a
//     cleared vector would first zero it, on the thread the others wait for).
//  2. pack_kept_values: out.values on that union, from the same x and rule.
void select_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, SparseActivations& out);
void pack_kept_values(const float* x, const KeepRule& rule, SparseActivations& out);

// Both steps: keeps x[t, j] where |x[t, j]| > threshold (channel_thresholds[j]
// when channel_thresholds is non-null: CHESS's per-channel rule).
void threshold_activations(const float* x, int64_t n_tok, int64_t width, float threshold,
                           const float* channel_thresholds, SparseActivations& out);

// Both steps for a mask already decided per token-channel: keep[t * width + j].
void pack_activations(const float* x, const uint8_t* keep, int64_t n_tok, int64_t width,
                      SparseActivations& out);

// Spark Transformer's statistical top-k: the threshold that keeps about k of
// the d entries of a vector whose entries are roughly normal is
// mean + std * z, z = Phi^-1(1 - k/d). Linear time, no sort.
double statistical_topk_z(double keep_fraction);
float statistical_topk_threshold(const float* x, int64_t d, double z);

// Statistical top-k for the magnitude of a SwiGLU gate, |SiLU(g_i)|: fits
// g ~ N(mean, std^2) from the vector (linear time, as Spark does for
// pre-activations) and returns the tau for which P(|SiLU(G)| > tau) =
// keep_fraction under that fit — the closed form of the fraction above tau
// (one positive root of SiLU(g) = tau, and for tau < 0.2785 the two negative
// roots of SiLU(g) = -tau) solved by bisection: a constant number of scalar
// steps per vector, no sort. (A Gaussian quantile taken directly over the
// skewed |SiLU| values keeps far too few: 69% sparsity for a 50% target on
// stories260K.)
float statistical_topk_silu_threshold(const float* g, int64_t d, double keep_fraction);

// Inverse of the standard normal CDF (Acklam's rational approximation refined
// by one Halley step; |error| < 1e-9 on (0, 1)).
double inverse_normal_cdf(double p);

}  // namespace ffn
