// ffn quantize, synth and bench: bit-exact quantization against scalar
// encoders written from the block definitions, synthetic models that load
// and have the promised statistics, and bench's JSON contract.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/half.h"
#include "core/mapped_file.h"
#include "io/gguf_file.h"
#include "kernels/amx_packed.h"
#include "kernels/convert.h"
#include "kernels/quant_blocks.h"
#include "model/loaded_model.h"
#include "test_util.h"
#include "transform/synthesize.h"

namespace ffn {
namespace {

// Q8_0 and Q4_0 as the GGUF/ggml format defines them, written independently
// of kernels/convert.cpp: d = amax/127, q = roundf(x/d); Q4_0: d = m/-8 for
// the signed value m of largest magnitude, q = min(15, trunc(x/d + 8.5)).
std::vector<uint8_t> definition_q8_0(const float* x, size_t n) {
  std::vector<uint8_t> out(n / 32 * sizeof(BlockQ8_0));
  for (size_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127, id = d ? 1 / d : 0;
    BlockQ8_0 blk{f32_to_f16(d), {}};
    for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<int8_t>(std::roundf(x[b * 32 + j] * id));
    std::memcpy(out.data() + b * sizeof blk, &blk, sizeof blk);
  }
  return out;
}
std::vector<uint8_t> definition_q4_0(const float* x, size_t n) {
  std::vector<uint8_t> out(n / 32 * sizeof(BlockQ4_0));
  for (size_t b = 0; b < n / 32; ++b) {
    float amax = 0, m = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[b * 32 + j]) > amax) amax = std::fabs(x[b * 32 + j]), m = x[b * 32 + j];
    const float d = m / -8, id = d ? 1 / d : 0;
    BlockQ4_0 blk{f32_to_f16(d), {}};
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[b * 32 + j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[b * 32 + 16 + j] * id + 8.5f)));
      blk.qs[j] = static_cast<uint8_t>(lo | hi << 4);
    }
    std::memcpy(out.data() + b * sizeof blk, &blk, sizeof blk);
  }
  return out;
}

TEST(Quantize, FileBlocksAreBitIdenticalToTheFormatDefinition) {
  for (const std::string type : {"q8_0", "q4_0"}) {
    const std::string out = test::temp_dir() + "/q.gguf";
    const auto r = test::run_command(test::ffn_binary() + " quantize -m " + test::model_path("stories260K.gguf") +
                                     " --type " + type + " -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    GgufFile in(test::model_path("stories260K.gguf")), q(out);
    int quantized = 0;
    for (const auto& t : in.tensors()) {
      const WeightTensor* u = q.find_tensor(t.name);
      ASSERT_NE(u, nullptr) << t.name;
      if (t.shape.size() == 1) {
        EXPECT_EQ(u->type, DType::F32) << t.name;
        continue;
      }
      if (t.cols() % 32 != 0) {  // ffn_down rows (172): F16 fallback
        EXPECT_EQ(u->type, DType::F16) << t.name;
        continue;
      }
      const float* x = reinterpret_cast<const float*>(t.data);
      const auto want = type == "q8_0" ? definition_q8_0(x, t.elements()) : definition_q4_0(x, t.elements());
      ASSERT_EQ(u->bytes, want.size()) << t.name;
      EXPECT_EQ(0, std::memcmp(u->data, want.data(), want.size())) << type << " " << t.name;
      ++quantized;
    }
    EXPECT_EQ(quantized, 1 + 1 + 5 * 6) << "embedding, output, and 6 matrices per layer";
  }
}

TEST(Quantize, Q8_0PerplexityStaysWithinHalfAPercentOfF32) {
  std::string text = test::ref_path("valid_slice.txt");
  if (test::kSanitized) {  // its first 50 lines (~2.5K tokens of the 10K)
    const std::string all = read_text_file(text);
    size_t end = 0;
    for (int line = 0; line < 50 && end != std::string::npos; ++line) end = all.find('\n', end + 1);
    text = test::temp_dir() + "/slice50.txt";
    std::ofstream(text) << all.substr(0, end);
  }
  auto ppl = [&](const std::string& model) {
    const auto r = test::run_command(test::ffn_binary() + " perplexity -m " + model + " -f " + text +
                                     " --ctx 128 --json");
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out).at("ppl").get<double>();
  };
  for (const std::string& model : {test::model_path("stories260K.gguf"), test::data_path("models/tinystories-656k")}) {
    const std::string q8 = test::temp_dir() + "/q8.gguf", q4 = test::temp_dir() + "/q4.gguf";
    ASSERT_EQ(test::run_command(test::ffn_binary() + " quantize -m " + model + " --type q8_0 -o " + q8).status, 0);
    ASSERT_EQ(test::run_command(test::ffn_binary() + " quantize -m " + model + " --type q4_0 -o " + q4).status, 0);
    const double f32 = ppl(model), p8 = ppl(q8), p4 = ppl(q4);
    std::printf("%s: PPL F32 %.4f  Q8_0 %.4f (%+.2f%%)  Q4_0 %.4f (%+.2f%%)\n", model.c_str(), f32, p8,
                100 * (p8 / f32 - 1), p4, 100 * (p4 / f32 - 1));
    EXPECT_LT(std::abs(p8 / f32 - 1), 0.005);
    EXPECT_LT(std::abs(p4 / f32 - 1), 0.25) << "Q4_0 of a tiny model loses more, but not everything";
  }
}

TEST(Synth, TinyModelLoadsWithThePromisedStatistics) {
  const std::string out = test::temp_dir() + "/tiny.gguf";
  const auto r = test::run_command(test::ffn_binary() + " synth --preset tiny --type f32 --seed 7 -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  LoadedModel m = load_model(out);
  EXPECT_EQ(m.model->config().vocab_size, 32000);
  const Tokenizer& tok = m.require_tokenizer();
  const std::string text = "Once upon a time, 42 cats!";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  // Weights N(0, 1/fan_in), norms 1.
  const WeightTensor& up = m.source.get("blk.1.ffn_up.weight");
  const float* w = reinterpret_cast<const float*>(up.data);
  double sum = 0, sq = 0;
  for (uint64_t i = 0; i < up.elements(); ++i) sum += w[i], sq += double(w[i]) * w[i];
  const double n = double(up.elements()), mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(var * up.cols(), 1.0, 0.05);
  const WeightTensor& norm = m.source.get("blk.0.ffn_norm.weight");
  EXPECT_EQ(reinterpret_cast<const float*>(norm.data)[5], 1.0f);
  // Same seed, same file.
  const std::string again = test::temp_dir() + "/again.gguf";
  ASSERT_EQ(test::run_command(test::ffn_binary() + " synth --preset tiny --type f32 --seed 7 -o " + again).status, 0);
  EXPECT_EQ(read_text_file(out), read_text_file(again));
}

TEST(Bench, JsonLineHasTheDocumentedKeys) {
  const auto r = test::run_command(test::ffn_binary() + " bench -m " + test::model_path("stories260K.gguf") +
                                   " -p 16 -n 8 -r 1 -t 1 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "exactly one line";
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"prefill_tok_s", "decode_tok_s", "peak_rss_mb", "weight_bytes_per_token", "decode_gb_s",
                          "bandwidth_gb_s", "bandwidth_fraction"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j.at(key).get<double>(), 0.0) << key;
  }
  // Weights read per token: every matrix of the model plus one embedding row.
  LoadedModel m = load_model(test::model_path("stories260K.gguf"));
  uint64_t bytes = 0;
  for (const auto& t : m.source.tensors)
    if (t.shape.size() == 2 && t.name != "token_embd.weight") bytes += t.bytes;
  EXPECT_EQ(j.at("weight_bytes_per_token").get<uint64_t>(), bytes + 64 * 4);
  EXPECT_NEAR(j.at("decode_gb_s").get<double>(),
              j.at("decode_tok_s").get<double>() * j.at("weight_bytes_per_token").get<double>() / 1e9, 1e-3);
  // The same bytes by section: q/k/v/o, the FFN, the rest (output head and
  // the embedding row); each section's read rate is positive.
  uint64_t attention = 0, ffn = 0;
  for (const auto& t : m.source.tensors) {
    if (t.shape.size() != 2 || t.name.rfind("blk.", 0) != 0) continue;
    (t.name.find(".attn_") != std::string::npos ? attention : ffn) += t.bytes;
  }
  EXPECT_EQ(j.at("attention_bytes_per_token").get<uint64_t>(), attention);
  EXPECT_EQ(j.at("ffn_bytes_per_token").get<uint64_t>(), ffn);
  EXPECT_EQ(j.at("other_bytes_per_token").get<uint64_t>(), bytes + 64 * 4 - attention - ffn);
  for (const char* key : {"decode_attention_gb_s", "decode_ffn_gb_s", "decode_other_gb_s"})
    EXPECT_GT(j.at(key).get<double>(), 0.0) << key;
  EXPECT_EQ(j.at("amx").get<bool>(), amx_in_use());
  EXPECT_FALSE(j.contains("vs_read")) << "only with --vs-read";
}

TEST(Bench, VsReadComparesEveryTokenWithAReadOfItsBytes) {
  const auto r = test::run_command(test::ffn_binary() + " bench -m " + test::model_path("stories260K.gguf") +
                                   " -p 4 -n 5 -r 3 -t 2 --json --vs-read");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("vs_read_tokens").get<int>(), 15);  // -n x -r
  EXPECT_GT(j.at("vs_read").get<double>(), 0.0);
  EXPECT_GT(j.at("vs_read_gb_s").get<double>(), 0.0);
  const auto text = test::run_command(test::ffn_binary() + " bench -m " + test::model_path("stories260K.gguf") +
                                      " -p 4 -n 5 -r 1 -t 1 --vs-read");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("vs read          decode at "), std::string::npos) << text.out;
}

}  // namespace
}  // namespace ffn
