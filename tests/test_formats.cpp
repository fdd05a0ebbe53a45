// Cross-format checks: the three stories260K files (llama2.c legacy, llama2.c
// v1, GGUF) hold bit-identical tensors and must give identical logits; GGUF
// written by `ffn convert` must give identical logits to its input and read
// back losslessly; safetensors -> GGUF keeps model and tokenizer.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/thread_pool.h"
#include "io/gguf_file.h"
#include "io/model_source.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ffn {
namespace {

namespace fs = std::filesystem;

std::vector<int32_t> probe_tokens(const Tokenizer& tok) {
  std::vector<int32_t> ids = {tok.bos()};
  const auto t = tok.encode("Once upon a time, there was a little dog named Spot. He liked to run.");
  ids.insert(ids.end(), t.begin(), t.end());
  return ids;
}

Tensor all_logits(LoadedModel& m, const std::vector<int32_t>& ids) {
  KvCache cache = m.model->make_cache(static_cast<int64_t>(ids.size()));
  Tensor logits;
  m.model->forward(ids.data(), static_cast<int64_t>(ids.size()), cache, logits, true, ThreadPool::global());
  return logits;
}

void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.rows, b.rows) << what;
  ASSERT_EQ(a.cols, b.cols) << what;
  EXPECT_EQ(0, std::memcmp(a.ptr(), b.ptr(), sizeof(float) * a.data.size())) << what << ": logits differ";
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (size_t i = 0; i < a.data.size(); ++i) m = std::max(m, double(std::abs(a.data[i] - b.data[i])));
  return m;
}

TEST(Formats, ThreeStories260KFilesGiveIdenticalLogits) {
  LoadedModel legacy = load_model(test::data_path("models/stories260K.bin"), test::data_path("models/tok512.bin"));
  LoadedModel v1 = load_model(test::data_path("models/stories260K_v1.bin"), test::data_path("models/tok512.bin"));
  LoadedModel gguf = load_model(test::data_path("models/stories260K.gguf"));
  EXPECT_EQ(legacy.source.format, "llama2c");
  EXPECT_EQ(v1.source.format, "llama2c");
  EXPECT_EQ(gguf.source.format, "gguf");
  const auto ids = probe_tokens(legacy.require_tokenizer());
  const Tensor ref = all_logits(legacy, ids);
  expect_identical(ref, all_logits(v1, ids), "v1 vs legacy");
  expect_identical(ref, all_logits(gguf, ids), "gguf vs legacy");
}

TEST(Formats, GgufTokenizerEqualsLlama2cTokenizer) {
  LoadedModel legacy = load_model(test::data_path("models/stories260K.bin"), test::data_path("models/tok512.bin"));
  LoadedModel gguf = load_model(test::data_path("models/stories260K.gguf"));
  const std::string text = read_text_file(test::data_path("text/tinystories_valid_head.txt")).substr(0, 50000);
  const auto a = legacy.require_tokenizer().encode(text);
  EXPECT_GT(a.size(), 10000u);
  EXPECT_EQ(a, gguf.require_tokenizer().encode(text));
  EXPECT_EQ(legacy.require_tokenizer().decode(a), text);
}

TEST(Formats, ConvertLlama2cToGgufKeepsLogitsAndTokenizer) {
  const std::string out = test::temp_dir() + "/s.gguf";
  const auto r = test::run_command(test::ffn_binary() + " convert -m " + test::model_path("stories260K.bin") +
                                   " -z " + test::model_path("tok512.bin") + " -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  LoadedModel in = load_model(test::model_path("stories260K.bin"), test::model_path("tok512.bin"));
  LoadedModel conv = load_model(out);
  ASSERT_TRUE(conv.tokenizer.has_value());
  const auto ids = probe_tokens(in.require_tokenizer());
  EXPECT_EQ(ids, probe_tokens(conv.require_tokenizer()));
  expect_identical(all_logits(in, ids), all_logits(conv, ids), "converted llama2.c");
  EXPECT_EQ(conv.source.find("output.weight"), nullptr) << "shared classifier is written once, as llama.cpp expects";
}

TEST(Formats, ConvertSafetensorsToGgufKeepsLogitsAndTokenizer) {
  const std::string in_dir = test::data_path("models/tinystories-656k");
  const std::string out = test::temp_dir() + "/656k.gguf";
  const auto r = test::run_command(test::ffn_binary() + " convert -m " + in_dir + " -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  LoadedModel in = load_model(in_dir);
  LoadedModel conv = load_model(out);
  const std::string text = read_text_file(test::data_path("text/tinystories_valid_head.txt")).substr(0, 20000) +
                           " café 日本語 🙂";
  EXPECT_EQ(in.require_tokenizer().encode(text), conv.require_tokenizer().encode(text));
  const auto ids = probe_tokens(in.require_tokenizer());
  expect_identical(all_logits(in, ids), all_logits(conv, ids), "converted safetensors");
}

TEST(Formats, GgufReadWriteReadIsLossless) {
  const std::string out = test::temp_dir() + "/rt.gguf";
  ModelSource src = load_model_source(test::model_path("stories260K.gguf"));
  write_gguf(src, out);
  ModelSource back = load_model_source(out);
  GgufFile a(test::model_path("stories260K.gguf")), b(out);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const WeightTensor* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(u->type, t.type);
    EXPECT_EQ(u->shape, t.shape);
    ASSERT_EQ(u->bytes, t.bytes);
    EXPECT_EQ(0, std::memcmp(u->data, t.data, t.bytes)) << t.name;
  }
  // Every metadata key of the input survives with the same value.
  for (const auto& [key, value] : a.metadata()) {
    if (key == "general.file_type") continue;  // regenerated by design
    const GgufValue* v = b.find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->to_display(1u << 20), value.to_display(1u << 20)) << key;
  }
  // And writing the re-read source again gives the same bytes.
  const std::string out2 = test::temp_dir() + "/rt2.gguf";
  write_gguf(back, out2);
  EXPECT_EQ(read_text_file(out), read_text_file(out2));
}

TEST(Formats, ConvertToF16AndBf16) {
  LoadedModel ref = load_model(test::model_path("stories260K.gguf"));
  const auto ids = probe_tokens(ref.require_tokenizer());
  const Tensor want = all_logits(ref, ids);
  for (const std::string type : {"f16", "bf16"}) {
    const std::string out = test::temp_dir() + "/" + type + ".gguf";
    const auto r = test::run_command(test::ffn_binary() + " convert -m " + test::model_path("stories260K.gguf") +
                                     " --type " + type + " -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    LoadedModel m = load_model(out);
    EXPECT_EQ(m.source.get("blk.0.ffn_up.weight").type, type == "f16" ? DType::F16 : DType::BF16);
    EXPECT_EQ(m.source.get("blk.0.ffn_norm.weight").type, DType::F32);
    EXPECT_LT(fs::file_size(out), fs::file_size(test::model_path("stories260K.gguf")) * 6 / 10);
    // Rounding weights to 11 (f16) or 8 (bf16) significant bits moves the
    // logits (magnitude ~10) a little (measured 0.011 and 0.069), never a lot.
    const double diff = max_abs_diff(want, all_logits(m, ids));
    std::printf("%s: max |logit diff| vs f32 = %.4g\n", type.c_str(), diff);
    EXPECT_GT(diff, 0.0);
    EXPECT_LT(diff, type == "f16" ? 0.05 : 0.3);
  }
}

TEST(Formats, FailedConvertLeavesNoOutput) {
  const std::string dir = test::temp_dir();
  const std::string bad = dir + "/bad.bin";
  {
    FILE* f = std::fopen(bad.c_str(), "wb");
    const int32_t header[7] = {64, 172, 5, 8, 4, 512, 512};  // weights missing
    std::fwrite(header, sizeof header, 1, f);
    std::fclose(f);
  }
  const auto r = test::run_command(test::ffn_binary() + " convert -m " + bad + " -o " + dir + "/out.gguf");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out.gguf"));
  // No temporary file left behind either.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename() != "bad.bin";
  EXPECT_EQ(files, 0);
}

}  // namespace
}  // namespace ffn
