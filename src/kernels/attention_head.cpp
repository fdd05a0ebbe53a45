// attend_head (kernels/attention_head.h) with Google Highway: scores, the
// softmax's exp and the weighted sum of values each run as one vector loop
// over the positions. The softmax normalisation is folded into the output
// (out = sum_j e_j v_j / sum_j e_j), so the scores are written once.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_head.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/attention_head.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// scores[j] = scale * q . k_j. Four positions at a time, so four independent
// accumulators hide the FMA latency; head_dim's tail (and heads narrower
// than a vector) in scalar code.
void Scores(const float* HWY_RESTRICT q, const float* HWY_RESTRICT keys, int64_t stride, int64_t n_pos,
            int64_t head_dim, float scale, float* HWY_RESTRICT scores) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t vec_dim = head_dim / N * N;
  auto tail = [&](const float* k) {
    float s = 0;
    for (int64_t i = vec_dim; i < head_dim; ++i) s += q[i] * k[i];
    return s;
  };
  int64_t j = 0;
  for (; j + 4 <= n_pos; j += 4) {
    const float* k0 = keys + j * stride;
    const float* k1 = k0 + stride;
    const float* k2 = k1 + stride;
    const float* k3 = k2 + stride;
    auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    for (int64_t i = 0; i < vec_dim; i += N) {
      const auto qv = hn::LoadU(d, q + i);
      a0 = hn::MulAdd(qv, hn::LoadU(d, k0 + i), a0);
      a1 = hn::MulAdd(qv, hn::LoadU(d, k1 + i), a1);
      a2 = hn::MulAdd(qv, hn::LoadU(d, k2 + i), a2);
      a3 = hn::MulAdd(qv, hn::LoadU(d, k3 + i), a3);
    }
    scores[j] = (hn::GetLane(hn::SumOfLanes(d, a0)) + tail(k0)) * scale;
    scores[j + 1] = (hn::GetLane(hn::SumOfLanes(d, a1)) + tail(k1)) * scale;
    scores[j + 2] = (hn::GetLane(hn::SumOfLanes(d, a2)) + tail(k2)) * scale;
    scores[j + 3] = (hn::GetLane(hn::SumOfLanes(d, a3)) + tail(k3)) * scale;
  }
  for (; j < n_pos; ++j) {
    const float* k = keys + j * stride;
    auto a = hn::Zero(d);
    for (int64_t i = 0; i < vec_dim; i += N) a = hn::MulAdd(hn::LoadU(d, q + i), hn::LoadU(d, k + i), a);
    scores[j] = (hn::GetLane(hn::SumOfLanes(d, a)) + tail(k)) * scale;
  }
}

// scores[j] = exp(scores[j] - max); returns the sum.
float ExpShifted(float* HWY_RESTRICT scores, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  float mx = scores[0];
  int64_t j = 0;
  if (n >= N) {
    auto m = hn::LoadU(d, scores);
    for (j = N; j + N <= n; j += N) m = hn::Max(m, hn::LoadU(d, scores + j));
    mx = hn::GetLane(hn::MaxOfLanes(d, m));
  }
  for (; j < n; ++j) mx = std::max(mx, scores[j]);
  const auto vmx = hn::Set(d, mx);
  auto sum = hn::Zero(d);
  for (j = 0; j + N <= n; j += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, scores + j), vmx));
    hn::StoreU(e, d, scores + j);
    sum = hn::Add(sum, e);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, sum));
  for (; j < n; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    s += scores[j];
  }
  return s;
}

// out[i0, i0 + K*N) = inv * sum_j p[j] v_j[i0, ...): K vector accumulators
// stay in registers across all positions.
template <int K>
HWY_INLINE void MixColumns(const float* HWY_RESTRICT p, const float* HWY_RESTRICT values, int64_t stride,
                           int64_t n_pos, int64_t i0, float inv, float* HWY_RESTRICT out) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<DF> acc[K];
  for (int k = 0; k < K; ++k) acc[k] = hn::Zero(d);
  for (int64_t j = 0; j < n_pos; ++j) {
    const auto w = hn::Set(d, p[j]);
    const float* v = values + j * stride + i0;
    for (int k = 0; k < K; ++k) acc[k] = hn::MulAdd(w, hn::LoadU(d, v + k * N), acc[k]);
  }
  const auto vinv = hn::Set(d, inv);
  for (int k = 0; k < K; ++k) hn::StoreU(hn::Mul(acc[k], vinv), d, out + i0 + k * N);
}

void AttendHead(const float* HWY_RESTRICT q, const float* HWY_RESTRICT keys, const float* HWY_RESTRICT values,
                int64_t stride, int64_t n_pos, int64_t head_dim, float scale, float* HWY_RESTRICT scores,
                float* HWY_RESTRICT out) {
  Scores(q, keys, stride, n_pos, head_dim, scale, scores);
  const float inv = 1.0f / ExpShifted(scores, n_pos);
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + 4 * N <= head_dim; i += 4 * N) MixColumns<4>(scores, values, stride, n_pos, i, inv, out);
  for (; i + N <= head_dim; i += N) MixColumns<1>(scores, values, stride, n_pos, i, inv, out);
  for (; i < head_dim; ++i) {
    float s = 0;
    for (int64_t j = 0; j < n_pos; ++j) s += scores[j] * values[j * stride + i];
    out[i] = s * inv;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(AttendHead);

void attend_head(const float* q, const float* keys, const float* values, int64_t stride, int64_t n_pos,
                 int64_t head_dim, float scale, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHead)(q, keys, values, stride, n_pos, head_dim, scale, scores, out);
}

void attend_head_reference(const float* q, const float* keys, const float* values, int64_t stride,
                           int64_t n_pos, int64_t head_dim, float scale, float* out) {
  std::vector<double> p(static_cast<size_t>(n_pos));
  double mx = -INFINITY;
  for (int64_t j = 0; j < n_pos; ++j) {
    double s = 0;
    for (int64_t i = 0; i < head_dim; ++i) s += double(q[i]) * keys[j * stride + i];
    p[size_t(j)] = s * scale;
    mx = std::max(mx, p[size_t(j)]);
  }
  double sum = 0;
  for (double& v : p) sum += (v = std::exp(v - mx));
  for (int64_t i = 0; i < head_dim; ++i) {
    double s = 0;
    for (int64_t j = 0; j < n_pos; ++j) s += p[size_t(j)] * values[j * stride + i];
    out[i] = static_cast<float>(s / sum);
  }
}

}  // namespace ffn
#endif  // HWY_ONCE
