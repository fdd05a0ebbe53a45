// kernels/activation_mask.h against a scalar reference written from its
// header: random activations (with a NaN and both signs of zero), widths
// around the vector length, one to five tokens, each kind of rule.
#include "kernels/activation_mask.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "test_util.h"

namespace ffn {
namespace {

bool reference_keep(const std::vector<float>& x, int64_t t, int64_t j, int64_t width, const KeepRule& r) {
  if (r.keep) return r.keep[t * width + j] != 0;
  return std::fabs(x[size_t(t * width + j)]) > (r.channel_thresholds ? r.channel_thresholds[j] : r.threshold);
}

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

struct RuleCase {
  const char* name;
  KeepRule rule;
};

TEST(ActivationMask, MatchesTheScalarRuleAtOddWidths) {
  for (int64_t width : {1, 7, 15, 16, 17, 33, 100, 1037}) {
    for (int64_t n_tok : {1, 3, 5}) {
      auto x = test::random_floats(size_t(n_tok * width), uint64_t(width * 10 + n_tok));
      x[0] = -0.0f;
      if (x.size() > 2) x[2] = std::numeric_limits<float>::quiet_NaN();
      if (x.size() > 5) x[5] = 0.0f;
      const auto ct_raw = test::random_floats(size_t(width), 99);
      std::vector<float> channel(static_cast<size_t>(width));
      for (int64_t j = 0; j < width; ++j) channel[j] = 0.5f * std::fabs(ct_raw[j]);
      std::vector<uint8_t> keep(x.size());
      std::mt19937 rng(uint32_t(width + n_tok));
      for (auto& k : keep) k = static_cast<uint8_t>(rng() % 3 == 0 ? 0 : rng() % 255 + 1);
      const RuleCase cases[] = {
          {"threshold 0.5", KeepRule{.threshold = 0.5f}},
          {"threshold 0", KeepRule{.threshold = 0.0f}},
          {"drops all", KeepRule{.threshold = 1e30f}},
          {"channel thresholds", KeepRule{.channel_thresholds = channel.data()}},
          {"keep bytes", KeepRule{.keep = keep.data()}},
      };
      for (const RuleCase& c : cases) {
        SCOPED_TRACE(testing::Message() << c.name << ", width " << width << ", tokens " << n_tok);
        // Reference.
        uint64_t kept = 0;
        std::vector<int32_t> active;
        std::vector<uint8_t> any(static_cast<size_t>(width), 0);
        for (int64_t t = 0; t < n_tok; ++t)
          for (int64_t j = 0; j < width; ++j)
            if (reference_keep(x, t, j, width, c.rule)) ++kept, any[j] = 1;
        for (int64_t j = 0; j < width; ++j)
          if (any[j]) active.push_back(int32_t(j));
        const int64_t na = int64_t(active.size());
        std::vector<float> values(static_cast<size_t>(n_tok * na)), masked(x.size());
        for (int64_t t = 0; t < n_tok; ++t) {
          for (int64_t k = 0; k < na; ++k)
            values[t * na + k] = reference_keep(x, t, active[k], width, c.rule) ? x[t * width + active[k]] : 0.0f;
          for (int64_t j = 0; j < width; ++j)
            masked[t * width + j] = reference_keep(x, t, j, width, c.rule) ? x[t * width + j] : 0.0f;
        }
        // Kernels. Sentinels past the ends catch writes beyond the counts.
        std::vector<int32_t> in_union(static_cast<size_t>(width), 7);
        const KeptCounts got = mark_kept(x.data(), n_tok, width, c.rule, in_union.data());
        ASSERT_EQ(got.kept, kept);
        ASSERT_EQ(got.union_size, na);
        for (int64_t j = 0; j < width; ++j) ASSERT_EQ(in_union[j], any[j] ? -1 : 0) << j;
        std::vector<int32_t> got_active(static_cast<size_t>(na + 1), -5);
        std::vector<float> got_values(static_cast<size_t>(n_tok * na + 1), 42.0f);
        pack_kept(x.data(), n_tok, width, c.rule, in_union.data(), na, got_active.data(), got_values.data());
        for (int64_t k = 0; k < na; ++k) ASSERT_EQ(got_active[k], active[k]) << k;
        ASSERT_EQ(got_active[na], -5);
        for (int64_t i = 0; i < n_tok * na; ++i) ASSERT_EQ(bits(got_values[i]), bits(values[i])) << i;
        ASSERT_EQ(got_values[n_tok * na], 42.0f);
        std::vector<float> got_masked(x.size() + 1, 42.0f);
        mask_kept(x.data(), n_tok, width, c.rule, got_masked.data());
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(bits(got_masked[i]), bits(masked[i])) << i;
        ASSERT_EQ(got_masked[x.size()], 42.0f);
      }
    }
  }
}

}  // namespace
}  // namespace ffn
