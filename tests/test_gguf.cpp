// GGUF reader/writer: every metadata value type (including nested arrays)
// round-trips; F16/BF16/Q8_0/Q4_0 tensors written from their format
// definitions load and run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "io/gguf_file.h"
#include "io/gguf_writer.h"
#include "io/model_source.h"
#include "kernels/quant_blocks.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ffn {
namespace {

GgufValue scalar(GgufType t, int64_t i, uint64_t u, double f) {
  GgufValue v;
  v.type = t;
  v.i = i;
  v.u = u;
  v.f = f;
  return v;
}

TEST(Gguf, EveryValueTypeRoundTrips) {
  GgufWriter w;
  w.set("u8", scalar(GgufType::U8, 0, 250, 0));
  w.set("i8", scalar(GgufType::I8, -100, 0, 0));
  w.set("u16", scalar(GgufType::U16, 0, 65000, 0));
  w.set("i16", scalar(GgufType::I16, -32000, 0, 0));
  w.set("u32", scalar(GgufType::U32, 0, 4000000000u, 0));
  w.set("i32", scalar(GgufType::I32, -2000000000, 0, 0));
  w.set("u64", scalar(GgufType::U64, 0, 1ull << 60, 0));
  w.set("i64", scalar(GgufType::I64, -(1ll << 60), 0, 0));
  w.set("f32", scalar(GgufType::F32, 0, 0, 1.5));
  w.set("f64", scalar(GgufType::F64, 0, 0, 3.141592653589793));
  w.set("bool", GgufValue::of_bool(true));
  w.set("string", GgufValue::of_string("h\xc3\xa9llo\n"));
  w.set("empty", GgufValue::of_array(GgufType::I32, {}));
  w.set("nested", GgufValue::of_array(GgufType::ARRAY,
                                      {GgufValue::of_array(GgufType::STRING, {GgufValue::of_string("a"), GgufValue::of_string("")}),
                                       GgufValue::of_array(GgufType::F32, {GgufValue::of_f32(-2.0f)})}));
  const auto data = test::random_floats(3 * 5, 1);
  WeightTensor t{"w", DType::F32, {3, 5}, reinterpret_cast<const uint8_t*>(data.data()), 60};
  w.add_tensor(t);
  const std::string path = test::temp_dir() + "/all.gguf";
  w.write(path);

  GgufFile g(path);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.find("u8")->u, 250u);
  EXPECT_EQ(g.find("i8")->i, -100);
  EXPECT_EQ(g.find("u16")->u, 65000u);
  EXPECT_EQ(g.find("i16")->i, -32000);
  EXPECT_EQ(g.get_uint("u32"), 4000000000u);
  EXPECT_EQ(g.find("i32")->i, -2000000000);
  EXPECT_EQ(g.get_uint("u64"), 1ull << 60);
  EXPECT_EQ(g.find("i64")->i, -(1ll << 60));
  EXPECT_EQ(g.get_float("f32"), 1.5);
  EXPECT_EQ(g.get_float("f64"), 3.141592653589793);
  EXPECT_EQ(g.get_bool_opt("bool"), true);
  EXPECT_EQ(g.get_string("string"), "h\xc3\xa9llo\n");
  EXPECT_EQ(g.get_array_opt("empty", GgufType::I32)->size(), 0u);
  const auto* nested = g.get_array_opt("nested", GgufType::ARRAY);
  ASSERT_EQ(nested->size(), 2u);
  EXPECT_EQ((*nested)[0].array[0].s, "a");
  EXPECT_EQ((*nested)[0].array[1].s, "");
  EXPECT_EQ((*nested)[1].array[0].f, -2.0);
  // Typed accessors refuse the wrong type, naming file and key.
  try {
    g.get_string("u32");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": u32: expected string"), std::string::npos) << e.what();
  }
  EXPECT_THROW(g.get_array_opt("nested", GgufType::STRING), Error);
  const WeightTensor* back = g.find_tensor("w");
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->shape, (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(0, std::memcmp(back->data, data.data(), 60));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(back->data) % GgufWriter::kAlignment, 0u);
}

// Scalar encoders written from the block definitions (kernels/quant_blocks.h),
// as ggml's reference quantizers define them.
void quantize_q8_0(const float* x, uint8_t* out, uint64_t n) {
  for (uint64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b * 32 + j]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    BlockQ8_0 blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<int8_t>(std::lround(x[b * 32 + j] * id));
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}
void quantize_q4_0(const float* x, uint8_t* out, uint64_t n) {
  for (uint64_t b = 0; b < n / 32; ++b) {
    float amax = 0, mx = 0;
    for (int j = 0; j < 32; ++j)
      if (std::abs(x[b * 32 + j]) > amax) amax = std::abs(x[b * 32 + j]), mx = x[b * 32 + j];
    const float d = mx / -8.0f, id = d ? 1.0f / d : 0.0f;
    BlockQ4_0 blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(x[b * 32 + j] * id + 8.5f));
      const int hi = std::min(15, int(x[b * 32 + j + 16] * id + 8.5f));
      blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

TEST(Gguf, QuantizedAndHalfTensorsLoadAndRun) {
  ModelSource src = load_model_source(test::model_path("stories260K.gguf"));
  LoadedModel ref = load_model(test::model_path("stories260K.gguf"));
  const Tokenizer& tok = ref.require_tokenizer();
  std::vector<int32_t> ids = {tok.bos()};
  for (int32_t id : tok.encode("Once upon a time, there was a little girl")) ids.push_back(id);
  auto logits_of = [&](LoadedModel& m) {
    KvCache cache = m.model->make_cache(static_cast<int64_t>(ids.size()));
    Tensor out;
    m.model->forward(ids.data(), static_cast<int64_t>(ids.size()), cache, out, true, ThreadPool::global());
    return out;
  };
  const Tensor want = logits_of(ref);
  // Mean |logit difference| to F32 (logits have magnitude ~10); measured:
  // Q8_0 0.044, Q4_0 0.76, F16 0.0018, BF16 0.014. A Q4_0 decode with its
  // nibbles swapped gives 8.3, so the bounds separate right from wrong.
  for (const auto& [type, tolerance] : {std::pair{DType::Q8_0, 0.1}, std::pair{DType::Q4_0, 1.5},
                                        std::pair{DType::F16, 0.005}, std::pair{DType::BF16, 0.03}}) {
    ModelSource q = src;
    std::vector<std::shared_ptr<std::vector<uint8_t>>> bufs;
    int converted = 0;
    for (auto& t : q.tensors) {
      // Blocks run along rows; ffn_down rows (172) are not a multiple of 32
      // and stay F32, as llama.cpp keeps such tensors unquantized.
      if (t.shape.size() != 2 || !dtype_row_ok(type, t.cols())) continue;
      const uint64_t n = t.elements();
      auto buf = std::make_shared<std::vector<uint8_t>>(dtype_row_bytes(type, t.cols()) * t.rows());
      const float* x = reinterpret_cast<const float*>(t.data);
      if (type == DType::Q8_0) quantize_q8_0(x, buf->data(), n);
      else if (type == DType::Q4_0) quantize_q4_0(x, buf->data(), n);
      else
        for (uint64_t i = 0; i < n; ++i) {
          const uint16_t h = type == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
          std::memcpy(buf->data() + 2 * i, &h, 2);
        }
      t.type = type;
      t.data = buf->data();
      t.bytes = buf->size();
      bufs.push_back(buf);
      ++converted;
    }
    EXPECT_GE(converted, 30);
    const std::string path = test::temp_dir() + "/q.gguf";
    write_gguf(q, path);
    LoadedModel m = load_model(path);
    EXPECT_EQ(m.source.get("blk.0.attn_q.weight").type, type);
    const Tensor got = logits_of(m);
    double diff = 0;
    for (size_t i = 0; i < got.data.size(); ++i) diff += std::abs(got.data[i] - want.data[i]);
    diff /= double(got.data.size());
    std::printf("%s: mean |logit diff| vs F32 = %.4g\n", dtype_name(type).c_str(), diff);
    EXPECT_GT(diff, 0.0);
    EXPECT_LT(diff, tolerance) << dtype_name(type);
  }
}

}  // namespace
}  // namespace ffn
