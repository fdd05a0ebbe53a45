#include "ffn/sparse_activations.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ffn {

void select_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, SparseActivations& out) {
  out.n_tok = n_tok;
  out.width = width;
  out.in_union.resize(static_cast<size_t>(width));
  out.seen = static_cast<uint64_t>(n_tok * width);
  if (n_tok == 1) {
    // Decode: one pass writes the kept ids (into the scratch, then copied:
    // resizing `active` up would first zero it), no union flags. Between
    // two products with the other threads waiting, the two-pass union took
    // ~4 us for TinyLlama's 5632 channels, ~8 us in decode.
    const int64_t n = kept_ids(x, width, rule, out.in_union.data());
    out.active.assign(out.in_union.begin(), out.in_union.begin() + n);
    out.kept = static_cast<uint64_t>(n);
    out.union_flags = false;
    return;
  }
  const KeptCounts c = mark_kept(x, n_tok, width, rule, out.in_union.data());
  out.active.resize(static_cast<size_t>(c.union_size));
  out.union_flags = true;
  // The union's ids only (values for zero tokens).
  pack_kept(x, 0, width, rule, out.in_union.data(), c.union_size, out.active.data(), nullptr);
  out.kept = c.kept;
}

void pack_kept_values(const float* x, const KeepRule& rule, SparseActivations& out) {
  out.values.resize(static_cast<size_t>(out.n_tok * out.n_active()));
  pack_kept(x, out.n_tok, out.width, rule, out.union_flags ? out.in_union.data() : nullptr, out.n_active(), nullptr,
            out.values.data());
}

void threshold_activations(const float* x, int64_t n_tok, int64_t width, float threshold,
                           const float* channel_thresholds, SparseActivations& out) {
  const KeepRule rule{.threshold = threshold, .channel_thresholds = channel_thresholds};
  select_kept(x, n_tok, width, rule, out);
  pack_kept_values(x, rule, out);
}

void pack_activations(const float* x, const uint8_t* keep, int64_t n_tok, int64_t width,
                      SparseActivations& out) {
  const KeepRule rule{.keep = keep};
  select_kept(x, n_tok, width, rule, out);
  pack_kept_values(x, rule, out);
}

double inverse_normal_cdf(double p) {
  if (!(p > 0.0 && p < 1.0)) throw std::invalid_argument("inverse_normal_cdf: p outside (0, 1)");
  // Peter Acklam's coefficients (central and tail rational approximations).
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425, hi = 1 - lo;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= hi) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step on Phi(x) - p brings the error to double precision.
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double statistical_topk_z(double keep_fraction) {
  if (keep_fraction >= 1.0) return -INFINITY;
  if (keep_fraction <= 0.0) return INFINITY;
  return inverse_normal_cdf(1.0 - keep_fraction);
}

float statistical_topk_threshold(const float* x, int64_t d, double z) {
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < d; ++i) {
    sum += x[i];
    sq += double(x[i]) * x[i];
  }
  const double mean = sum / double(d);
  const double var = std::max(0.0, sq / double(d) - mean * mean);
  return static_cast<float>(mean + std::sqrt(var) * z);
}

namespace {

double silu_d(double g) { return g / (1.0 + std::exp(-g)); }

// SiLU's minimum: at g = -1.2785, value -0.27846.
constexpr double kSiluArgMin = -1.2784645427610738;
constexpr double kSiluMin = -0.27846454276107380;

// The g in [lo, hi] where SiLU(g) = c, SiLU monotone on the interval.
double silu_root(double c, double lo, double hi) {
  const bool increasing = silu_d(hi) > silu_d(lo);
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    if ((silu_d(mid) < c) == increasing) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// P(|SiLU(G)| > tau) for G ~ N(mean, sd^2).
double fraction_above(double tau, double mean, double sd) {
  const double g_pos = silu_root(tau, kSiluArgMin, std::max(1.0, tau + 40.0));
  double p = 1.0 - normal_cdf((g_pos - mean) / sd);
  if (tau < -kSiluMin) {
    const double a = silu_root(-tau, -80.0, kSiluArgMin), b = silu_root(-tau, kSiluArgMin, 0.0);
    p += normal_cdf((b - mean) / sd) - normal_cdf((a - mean) / sd);
  }
  return p;
}

}  // namespace

float statistical_topk_silu_threshold(const float* g, int64_t d, double keep_fraction) {
  if (keep_fraction >= 1.0) return -1.0f;  // keep everything
  if (keep_fraction <= 0.0) return INFINITY;
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < d; ++i) {
    sum += g[i];
    sq += double(g[i]) * g[i];
  }
  const double mean = sum / double(d);
  const double sd = std::sqrt(std::max(1e-30, sq / double(d) - mean * mean));
  // fraction_above falls as tau grows: bisect on [0, an upper bound].
  double lo = 0.0, hi = std::max(1.0, mean + 12.0 * sd);
  for (int i = 0; i < 50; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (fraction_above(mid, mean, sd) > keep_fraction) lo = mid;
    else hi = mid;
  }
  return static_cast<float>(0.5 * (lo + hi));
}

}  // namespace ffn
