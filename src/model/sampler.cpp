#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace ffn {

Sampler::Sampler(SamplerParams params) : params_(params), rng_(params.seed) {}

int32_t Sampler::sample(const float* logits, int64_t n) {
  if (params_.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
  }
  candidates_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) candidates_[i] = {logits[i] / params_.temperature, static_cast<int32_t>(i)};
  // Sort descending by logit, ties by id, so results never depend on the
  // standard library's sort.
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(keep);
  const float mx = candidates_[0].first;
  double sum = 0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - mx);
    sum += c.first;
  }
  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t cut = candidates_.size();
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cum += candidates_[i].first / sum;
      if (cum >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    candidates_.resize(cut);
    sum = 0;
    for (const auto& c : candidates_) sum += c.first;
  }
  // Uniform draw from our own bits (std distributions differ between
  // standard libraries; mt19937_64 does not).
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0) * sum;
  double cum = 0;
  for (const auto& c : candidates_) {
    cum += c.first;
    if (u < cum) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace ffn
