#include <gtest/gtest.h>

#include <cmath>

#include "model/sampler.h"
#include "test_util.h"

namespace ffn {
namespace {

TEST(Sampler, GreedyIsArgmax) {
  auto logits = test::random_floats(101, 5);
  logits[57] = 3.0f;
  Sampler s({.temperature = 0.0f});
  EXPECT_EQ(s.sample(logits.data(), 101), 57);
  Sampler k1({.temperature = 1.0f, .top_k = 1, .top_p = 1.0f, .seed = 3});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(k1.sample(logits.data(), 101), 57);
}

TEST(Sampler, SameSeedSameSequenceOtherSeedOtherSequence) {
  const auto logits = test::random_floats(200, 6);
  auto draw = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits.data(), 200));
    return out;
  };
  EXPECT_EQ(draw(1), draw(1));
  EXPECT_NE(draw(1), draw(2));
}

TEST(Sampler, TopKAndTopPRestrictTheCandidates) {
  std::vector<float> logits = {0.0f, 5.0f, 4.9f, 4.8f, -1.0f, 0.5f};
  Sampler k2({.temperature = 1.0f, .top_k = 2, .top_p = 1.0f, .seed = 9});
  for (int i = 0; i < 200; ++i) {
    const int32_t t = k2.sample(logits.data(), 6);
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
  // top-p 0.3: token 1 alone holds ~0.35 of the mass.
  Sampler p({.temperature = 1.0f, .top_k = 0, .top_p = 0.3f, .seed = 9});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p.sample(logits.data(), 6), 1);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 123});
  int counts[3] = {0, 0, 0};
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.sample(logits.data(), 3)]++;
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
}

}  // namespace
}  // namespace ffn
