// Hostile inputs: malformed model and tokenizer files, generated here from the
// shipped ones, must each produce an ffn::Error whose message names the file
// and the field, and never a crash, a hang, an out-of-bounds read or a huge
// allocation (the suite also runs under ASan + UBSan).
//
// Every case loads through ffn::load_model (parse, config validation, tensor
// shapes, model and tokenizer construction) and checks the specific message,
// so that a case cannot pass because the loader failed somewhere else.
// Formats: GGUF, llama2.c checkpoints (legacy and v1 "ak42"), llama2.c
// tokenizer.bin, safetensors + config.json + tokenizer.json.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <typeinfo>

#include "core/error.h"
#include "io/gguf_file.h"
#include "io/gguf_value.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ffn {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::data_path;
using test::model_path;
using test::temp_dir;

// ---------------------------------------------------------------------------
// Files and bytes

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  EXPECT_TRUE(in.good() || in.eof()) << path;
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

template <typename T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

template <typename T>
void patch(std::string& bytes, size_t offset, T v) {
  ASSERT_LE(offset + sizeof(T), bytes.size());
  std::memcpy(bytes.data() + offset, &v, sizeof(T));
}

// Peak resident set of this process, in bytes (monotonic).
uint64_t peak_rss() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

// ---------------------------------------------------------------------------
// Expecting errors

// Loads through the one public entry point and returns the ffn::Error
// message; any other outcome is a test failure.
std::string load_error(const std::string& path, const std::string& tokenizer = "") {
  try {
    LoadedModel m = load_model(path, tokenizer);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an ffn::Error but " << typeid(e).name() << ": " << e.what();
    return "<wrong exception type>";
  }
  ADD_FAILURE() << path << " loaded without an error";
  return "<no error>";
}

void check_message(const std::string& msg, const std::string& where,
                   std::initializer_list<std::string> needles) {
  EXPECT_NE(msg.find(where), std::string::npos) << "message does not name " << where << ":\n  " << msg;
  for (const auto& n : needles)
    EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\":\n  " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line:\n  " << msg;
}

// EXPECT_LOAD_ERROR(model, tokenizer, file named in the message, field, ...)
#define EXPECT_LOAD_ERROR(path, tokenizer, where, ...)         \
  do {                                                         \
    SCOPED_TRACE(std::string("loading ") + (path));            \
    check_message(load_error(path, tokenizer), where, {__VA_ARGS__}); \
  } while (0)

void check_loads(const std::string& path, const std::string& tokenizer = "") {
  try {
    LoadedModel m = load_model(path, tokenizer);
    EXPECT_TRUE(m.tokenizer.has_value()) << path;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << " should load: " << e.what();
  }
}

// ---------------------------------------------------------------------------
// A GGUF image built field by field, so that a test can write any value,
// valid or not. The baseline is the shipped stories260K.gguf re-encoded.

struct RawValue {
  uint32_t type;
  std::string payload;  // encoded value, without the type
};

std::string gguf_string(const std::string& s) { return le<uint64_t>(s.size()) + s; }

std::string encode_value(const GgufValue& v) {
  switch (v.type) {
    case GgufType::U8: return le<uint8_t>(static_cast<uint8_t>(v.u));
    case GgufType::I8: return le<int8_t>(static_cast<int8_t>(v.i));
    case GgufType::U16: return le<uint16_t>(static_cast<uint16_t>(v.u));
    case GgufType::I16: return le<int16_t>(static_cast<int16_t>(v.i));
    case GgufType::U32: return le<uint32_t>(static_cast<uint32_t>(v.u));
    case GgufType::I32: return le<int32_t>(static_cast<int32_t>(v.i));
    case GgufType::F32: return le<float>(static_cast<float>(v.f));
    case GgufType::BOOL: return le<uint8_t>(static_cast<uint8_t>(v.u));
    case GgufType::STRING: return gguf_string(v.s);
    case GgufType::ARRAY: {
      std::string s = le<uint32_t>(static_cast<uint32_t>(v.elem_type)) + le<uint64_t>(v.array.size());
      for (const auto& e : v.array) s += encode_value(e);
      return s;
    }
    case GgufType::U64: return le<uint64_t>(v.u);
    case GgufType::I64: return le<int64_t>(v.i);
    case GgufType::F64: return le<double>(v.f);
  }
  return {};
}

RawValue raw(const GgufValue& v) { return {static_cast<uint32_t>(v.type), encode_value(v)}; }
RawValue u32(uint32_t v) { return {4, le<uint32_t>(v)}; }
RawValue u64(uint64_t v) { return {10, le<uint64_t>(v)}; }
RawValue i32(int32_t v) { return {5, le<int32_t>(v)}; }
RawValue f32(float v) { return {6, le<float>(v)}; }
RawValue str(const std::string& s) { return {8, gguf_string(s)}; }

struct GgufTensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // as stored: fastest dimension first
  uint32_t type = 0;
  uint64_t offset = 0;
};

struct GgufImage {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count, kv_count;  // override the true counts
  std::vector<std::pair<std::string, RawValue>> kv;
  std::vector<GgufTensorSpec> tensors;
  std::string data;  // the tensor data section
  uint64_t alignment = 32;

  void set(const std::string& key, RawValue v) {
    for (auto& [k, old] : kv)
      if (k == key) {
        old = std::move(v);
        return;
      }
    kv.emplace_back(key, std::move(v));
  }
  void erase(const std::string& key) {
    auto it = std::find_if(kv.begin(), kv.end(), [&](const auto& p) { return p.first == key; });
    ASSERT_NE(it, kv.end()) << key;
    kv.erase(it);
  }
  GgufTensorSpec& tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    ADD_FAILURE() << "no tensor " << name;
    return tensors.front();
  }
  void erase_tensor(const std::string& name) {
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == name; });
    ASSERT_NE(it, tensors.end()) << name;
    tensors.erase(it);
  }

  std::string bytes() const {
    std::string s = le<uint32_t>(magic) + le<uint32_t>(version);
    s += le<uint64_t>(tensor_count.value_or(tensors.size()));
    s += le<uint64_t>(kv_count.value_or(kv.size()));
    for (const auto& [k, v] : kv) s += gguf_string(k) + le<uint32_t>(v.type) + v.payload;
    for (const auto& t : tensors) {
      s += gguf_string(t.name) + le<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) s += le<uint64_t>(d);
      s += le<uint32_t>(t.type) + le<uint64_t>(t.offset);
    }
    s.resize((s.size() + alignment - 1) / alignment * alignment, '\0');
    return s + data;
  }

  // Writes the image into a fresh temporary directory; returns the path.
  std::string write(const std::string& name = "model.gguf") const {
    const std::string path = temp_dir() + "/" + name;
    write_file(path, bytes());
    return path;
  }
};

const GgufFile& shipped_gguf() {
  static const GgufFile file(model_path("stories260K.gguf"));
  return file;
}

GgufImage shipped_gguf_image() {
  const GgufFile& f = shipped_gguf();
  GgufImage img;
  for (const auto& [k, v] : f.metadata()) img.kv.emplace_back(k, raw(v));
  for (const auto& t : f.tensors()) {
    GgufTensorSpec spec;
    spec.name = t.name;
    spec.ne.assign(t.shape.rbegin(), t.shape.rend());
    spec.type = static_cast<uint32_t>(t.type);
    spec.offset = img.data.size();
    img.tensors.push_back(spec);
    img.data.append(reinterpret_cast<const char*>(t.data), t.bytes);
    img.data.resize((img.data.size() + 31) / 32 * 32, '\0');
  }
  return img;
}

// The shipped tokenizer array `key` with element `index` replaced.
RawValue with_element(const std::string& key, size_t index, const GgufValue& value) {
  GgufValue v = *shipped_gguf().find(key);
  v.array.at(index) = value;
  return raw(v);
}

// An encoded array whose stored count is `count` but whose elements are
// those of the shipped `key`.
RawValue with_count(const std::string& key, uint64_t count) {
  RawValue r = raw(*shipped_gguf().find(key));
  std::memcpy(r.payload.data() + 4, &count, 8);
  return r;
}

class HostileGguf : public ::testing::Test {
 protected:
  GgufImage img = shipped_gguf_image();

  // Writes `img` and expects load_model to fail naming the file and fields.
  void check_error(std::initializer_list<std::string> needles) {
    const std::string path = img.write();
    SCOPED_TRACE("loading " + path);
    check_message(load_error(path), path, needles);
  }
};

TEST_F(HostileGguf, BaselineImageLoads) {
  // The re-encoded baseline must load, or every case below proves nothing.
  check_loads(img.write());
}

TEST_F(HostileGguf, BadMagic) {
  img.magic = 0x46554746;  // "FGUF"
  // Not GGUF and not a plausible llama2.c header either (dim > 2^20).
  check_error({"format", "unknown magic"});
  // Via GgufFile directly the magic itself is named.
  GgufImage other = shipped_gguf_image();
  other.magic = 0x47475546;  // "FUGG" (byte-swapped)
  const std::string path = other.write();
  try {
    GgufFile f(path);
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    check_message(e.what(), path, {"magic", "0x47475546"});
  }
}

TEST_F(HostileGguf, BadVersion) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    img.version = v;
    check_error({"version", "2 or 3", std::to_string(v)});
  }
}

TEST_F(HostileGguf, AbsurdTensorCount) {
  img.tensor_count = 1ull << 60;
  check_error({"tensor_count", std::to_string(1ull << 60)});
}

TEST_F(HostileGguf, AbsurdMetadataCount) {
  img.kv_count = ~0ull;
  check_error({"metadata_kv_count"});
}

TEST_F(HostileGguf, TensorCountLargerThanListed) {
  // Plausible count, but the infos run out: the reader hits the end of file.
  img.tensor_count = img.tensors.size() + 1;
  check_error({"tensor[48]"});  // its name is read from the padding: empty
}

TEST_F(HostileGguf, KeyLengthPastEndOfFile) {
  // Rename the first key to a string whose length is past the end.
  const uint64_t rss = peak_rss();
  const std::string good = img.bytes();
  std::string bad = good;
  patch<uint64_t>(bad, 24, 1ull << 40);
  const std::string path = temp_dir() + "/model.gguf";
  write_file(path, bad);
  check_message(load_error(path), path, {"metadata[0].key", "string length", std::to_string(1ull << 40)});
  patch<uint64_t>(bad, 24, good.size());  // past the end, but not absurd
  write_file(path, bad);
  check_message(load_error(path), path, {"metadata[0].key", "string length"});
  EXPECT_LT(peak_rss() - rss, 256ull << 20) << "a length was allocated before it was checked";
}

TEST_F(HostileGguf, StringValueLengthAbsurd) {
  const uint64_t rss = peak_rss();
  for (uint64_t len : {1ull << 62, 1ull << 31, 3ull << 20}) {
    img.set("general.name", {8, le<uint64_t>(len) + "llama"});
    check_error({"general.name", "string length", std::to_string(len)});
  }
  EXPECT_LT(peak_rss() - rss, 256ull << 20) << "a length was allocated before it was checked";
}

TEST_F(HostileGguf, ArrayCountAbsurd) {
  const uint64_t rss = peak_rss();
  for (uint64_t count : {~0ull, 1ull << 61, 1ull << 32, 1000000ull}) {
    img.set("tokenizer.ggml.tokens", with_count("tokenizer.ggml.tokens", count));
    check_error({"tokenizer.ggml.tokens", "array count", std::to_string(count)});
  }
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.scores", with_count("tokenizer.ggml.scores", 1ull << 62));
  check_error({"tokenizer.ggml.scores", "array count"});
  EXPECT_LT(peak_rss() - rss, 256ull << 20) << "a count was allocated before it was checked";
}

TEST_F(HostileGguf, ArraysCostingGigabytes) {
  // Each element in the file may be a single byte, but it costs a GgufValue
  // (~100 bytes) in memory: two 2.2M-element u8 arrays (4.4 MB of file) used to
  // take ~500 MB. The metadata arrays of a file share a budget of 2^22.
  const uint64_t rss = peak_rss();
  const uint64_t n = 2'200'000;
  img.set("general.blob1", {9, le<uint32_t>(0) + le<uint64_t>(n) + std::string(n, '\0')});
  img.set("general.blob2", {9, le<uint32_t>(0) + le<uint64_t>(n) + std::string(n, '\0')});
  check_error({"general.blob2", "at most 4194304 array elements", "found 2200000 more"});
  EXPECT_LT(peak_rss() - rss, 512ull << 20) << "metadata arrays took too much memory";
}

TEST_F(HostileGguf, ArrayElementStringPastEndOfFile) {
  // A string inside an array whose length runs past the end of file.
  RawValue r = raw(*shipped_gguf().find("tokenizer.ggml.tokens"));
  patch<uint64_t>(r.payload, 12, 1ull << 35);  // the first element's length
  img.set("tokenizer.ggml.tokens", r);
  check_error({"tokenizer.ggml.tokens", "string length", std::to_string(1ull << 35)});
}

TEST_F(HostileGguf, UnknownValueType) {
  img.set("general.name", {13, le<uint32_t>(0)});
  check_error({"general.name", "value type", "13"});
  img.set("general.name", {0xffffffffu, ""});
  check_error({"general.name", "value type", "4294967295"});
}

TEST_F(HostileGguf, UnknownArrayElementType) {
  img.set("general.tags", {9, le<uint32_t>(99) + le<uint64_t>(1) + "x"});
  check_error({"general.tags", "array element type", "99"});
}

TEST_F(HostileGguf, ArraysNestedTooDeep) {
  std::string payload;
  for (int d = 0; d < 6; ++d) payload += le<uint32_t>(9) + le<uint64_t>(1);
  payload += le<uint32_t>(4) + le<uint64_t>(0);
  img.set("general.tags", {9, payload});
  check_error({"general.tags", "nested"});
}

TEST_F(HostileGguf, BoolOutOfRange) {
  img.set("tokenizer.ggml.add_bos_token", {7, le<uint8_t>(2)});
  check_error({"tokenizer.ggml.add_bos_token", "bool 0 or 1", "found 2"});
}

TEST_F(HostileGguf, DuplicateMetadataKey) {
  img.kv.emplace_back("llama.block_count", u32(5));
  check_error({"llama.block_count", "unique metadata key", "duplicate"});
}

TEST_F(HostileGguf, TooManyDims) {
  img.tensor("blk.0.attn_q.weight").ne = {64, 64, 1, 1, 1};
  check_error({"tensor 'blk.0.attn_q.weight' n_dims", "1..4", "found 5"});
  img.tensor("blk.0.attn_q.weight").ne.assign(1000, 1);
  check_error({"tensor 'blk.0.attn_q.weight' n_dims", "found 1000"});
}

TEST_F(HostileGguf, ZeroDims) {
  img.tensor("output_norm.weight").ne = {};
  check_error({"tensor 'output_norm.weight' n_dims", "found 0"});
  img.tensor("output_norm.weight").ne = {64, 0};
  check_error({"tensor 'output_norm.weight' dim 1", "> 0"});
}

TEST_F(HostileGguf, DimensionProductOverflows64Bits) {
  img.tensor("token_embd.weight").ne = {1ull << 32, 1ull << 32, 16};
  check_error({"tensor 'token_embd.weight' shape", "overflow"});
  img.tensor("token_embd.weight").ne = {~0ull, ~0ull};
  check_error({"tensor 'token_embd.weight' shape", "overflow"});
  // Below 2^64 but absurd (2^51 elements).
  img.tensor("token_embd.weight").ne = {1ull << 26, 1ull << 25};
  check_error({"tensor 'token_embd.weight' shape", "2^50"});
}

TEST_F(HostileGguf, UnknownDtype) {
  for (uint32_t t : {3u /*Q4_1*/, 12u /*Q4_K*/, 39u, 0xffffffffu}) {
    img.tensor("blk.1.ffn_up.weight").type = t;
    check_error({"tensor 'blk.1.ffn_up.weight' type", "ggml type " + std::to_string(t)});
  }
}

TEST_F(HostileGguf, QuantizedRowNotWholeBlocks) {
  img.tensor("blk.1.ffn_down.weight").type = 8;  // Q8_0, dim 0 = 172 is not a multiple of 32
  check_error({"tensor 'blk.1.ffn_down.weight' dim 0", "multiple of 32", "172"});
}

TEST_F(HostileGguf, TensorOffsetPastEndOfFile) {
  img.tensor("blk.3.attn_k.weight").offset = 1ull << 40;
  check_error({"tensor 'blk.3.attn_k.weight' data", "past end of file"});
  img.tensor("blk.3.attn_k.weight").offset = ~0ull - 31;  // offset + size overflows
  check_error({"tensor 'blk.3.attn_k.weight' data", "past end of file"});
  img.tensor("blk.3.attn_k.weight").offset = img.data.size();
  check_error({"tensor 'blk.3.attn_k.weight' data", "past end of file"});
}

TEST_F(HostileGguf, TensorSizePastEndOfFile) {
  GgufTensorSpec& t = img.tensor("blk.4.ffn_norm.weight");  // the last tensor
  t.ne = {64, 1000};
  check_error({"tensor 'blk.4.ffn_norm.weight' data", "256000 bytes", "past end of file"});
}

TEST_F(HostileGguf, TensorOffsetMisaligned) {
  img.tensor("blk.0.attn_v.weight").offset += 4;
  check_error({"tensor 'blk.0.attn_v.weight' offset", "multiple of 32"});
}

TEST_F(HostileGguf, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 1u << 20}) {
    img.set("general.alignment", u32(a));
    check_error({"general.alignment", "power of two", std::to_string(a)});
  }
  img.set("general.alignment", str("32"));
  check_error({"general.alignment", "u32", "string"});
  // Legal but larger than the offsets were written for.
  img.set("general.alignment", u32(65536));
  check_error({"offset", "multiple of 65536"});
}

TEST_F(HostileGguf, DuplicateTensorName) {
  GgufTensorSpec dup = img.tensor("blk.2.attn_q.weight");
  img.tensors.push_back(dup);
  check_error({"tensor 'blk.2.attn_q.weight'", "unique tensor name", "duplicate"});
}

TEST_F(HostileGguf, MissingRequiredTensors) {
  for (const char* name : {"output_norm.weight", "blk.0.attn_norm.weight",
                           "blk.2.attn_q.weight", "blk.4.ffn_down.weight", "blk.3.ffn_norm.weight"}) {
    img = shipped_gguf_image();
    img.erase_tensor(name);
    check_error({"tensor '" + std::string(name) + "'", "present", "missing"});
  }
  // The vocabulary size comes from the embedding unless llama.vocab_size says it.
  img = shipped_gguf_image();
  img.erase_tensor("token_embd.weight");
  check_error({"vocab_size", "found 0"});
  img.set("llama.vocab_size", u32(512));
  check_error({"tensor 'token_embd.weight'", "present", "missing"});
}

TEST_F(HostileGguf, TensorShapeInconsistentWithConfig) {
  img.tensor("blk.0.ffn_gate.weight").ne = {172, 64};  // transposed
  check_error({"tensor 'blk.0.ffn_gate.weight' shape", "[172, 64]", "[64, 172]"});
  img = shipped_gguf_image();
  img.tensor("output.weight").ne = {64, 256};
  check_error({"tensor 'output.weight' shape", "[512, 64]", "[256, 64]"});
}

TEST_F(HostileGguf, MissingRequiredKeys) {
  for (const char* key : {"general.architecture", "llama.embedding_length", "llama.block_count",
                          "llama.attention.head_count", "llama.context_length",
                          "llama.feed_forward_length", "llama.attention.layer_norm_rms_epsilon"}) {
    img = shipped_gguf_image();
    img.erase(key);
    check_error({key, "a metadata key", "none"});
  }
}

TEST_F(HostileGguf, UnsupportedArchitecture) {
  img.set("general.architecture", str("gpt2"));
  check_error({"general.architecture", "\"llama\", \"qwen2\" or \"qwen2moe\"", "\"gpt2\""});
}

TEST_F(HostileGguf, BlockCountZeroHugeOrInconsistent) {
  img.set("llama.block_count", u32(0));
  check_error({"block_count", "1..1024", "found 0"});
  img.set("llama.block_count", u64(1ull << 40));
  check_error({"block_count", std::to_string(1ull << 40)});
  img.set("llama.block_count", u32(6));  // one more than the file holds
  check_error({"tensor 'blk.5.attn_norm.weight'", "missing"});
  img.set("llama.block_count", u32(4));  // fewer: blk.4.* would be ignored
  check_error({"block_count", "blk.4."});
}

TEST_F(HostileGguf, HeadCountZeroHugeOrInconsistent) {
  img.set("llama.attention.head_count", u32(0));
  check_error({"attention.head_count", "found 0"});
  img.set("llama.attention.head_count", u32(0xffffffffu));
  check_error({"attention.head_count", "4294967295"});
  img.set("llama.attention.head_count", u32(6));  // not a divisor of dim 64
  check_error({"attention.head_count", "divisor of dim 64", "found 6"});
  img.set("llama.attention.head_count", u32(4));  // head_dim 16: attn_k should be [64, 64]
  check_error({"tensor 'blk.0.attn_k.weight' shape", "[64, 64]", "[32, 64]"});
}

TEST_F(HostileGguf, KvHeadCountZeroHugeOrInconsistent) {
  img.set("llama.attention.head_count_kv", u32(0));
  check_error({"attention.head_count_kv", "found 0"});
  img.set("llama.attention.head_count_kv", u32(16));
  check_error({"attention.head_count_kv", "1..8", "found 16"});
  img.set("llama.attention.head_count_kv", u32(3));
  check_error({"attention.head_count_kv", "divisor of head_count 8"});
  img.set("llama.attention.head_count_kv", u32(8));  // attn_k should be [64, 64]
  check_error({"tensor 'blk.0.attn_k.weight' shape", "[64, 64]", "[32, 64]"});
}

TEST_F(HostileGguf, OtherHyperParametersOutOfRange) {
  struct Case {
    const char* key;
    RawValue value;
    const char* found;
  };
  const Case cases[] = {
      {"llama.embedding_length", u32(0), "found 0"},
      {"llama.embedding_length", u64(1ull << 40), "1099511627776"},
      {"llama.embedding_length", u32(128), "tensor 'token_embd.weight' shape"},
      {"llama.feed_forward_length", u32(0), "found 0"},
      {"llama.feed_forward_length", u32(100), "tensor 'blk.0.ffn_"},
      {"llama.context_length", u32(0), "found 0"},
      {"llama.context_length", u64(~0ull), "18446744073709551615"},
      {"llama.rope.dimension_count", u32(7), "even"},
      {"llama.rope.dimension_count", u32(10), "2..8"},
      {"llama.rope.dimension_count", u32(0), "found 0"},
      {"llama.rope.freq_base", f32(0.0f), "finite number > 1"},
      {"llama.rope.freq_base", f32(std::numeric_limits<float>::infinity()), "finite number > 1"},
      {"llama.rope.freq_base", {12, le<double>(1e300)}, "finite number > 1"},
      {"llama.attention.layer_norm_rms_epsilon", f32(-1.0f), "(0, 1)"},
      {"llama.attention.layer_norm_rms_epsilon", f32(std::numeric_limits<float>::quiet_NaN()), "(0, 1)"},
      {"llama.vocab_size", u32(1 << 23), "vocab_size"},
      {"llama.vocab_size", u32(511), "tensor 'token_embd.weight' shape"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    img = shipped_gguf_image();
    img.set(c.key, c.value);
    const std::string key = std::string(c.key).substr(6);  // without "llama."
    if (std::string(c.found).rfind("tensor", 0) == 0)
      check_error({c.found});
    else
      check_error({key, c.found});
  }
}

TEST_F(HostileGguf, MetadataOfUnexpectedType) {
  img.set("llama.block_count", str("5"));
  check_error({"llama.block_count", "an integer", "string"});
  img = shipped_gguf_image();
  img.set("llama.attention.head_count", i32(-8));
  check_error({"llama.attention.head_count", "non-negative", "-8"});
  img = shipped_gguf_image();
  img.set("llama.attention.layer_norm_rms_epsilon", u32(1));
  check_error({"llama.attention.layer_norm_rms_epsilon", "f32 or f64", "u32"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.model", u32(1));
  check_error({"tokenizer.ggml.model", "string", "u32"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.add_bos_token", u32(1));
  check_error({"tokenizer.ggml.add_bos_token", "bool", "u32"});
}

TEST_F(HostileGguf, MetadataArrayOfUnexpectedElementType) {
  // Same count, other element type: the reader expects strings, f32, i32.
  std::vector<GgufValue> ints(512, GgufValue::of_u32(1));
  img.set("tokenizer.ggml.tokens", raw(GgufValue::of_array(GgufType::U32, ints)));
  check_error({"tokenizer.ggml.tokens", "array of string", "array of u32"});
  img = shipped_gguf_image();
  std::vector<GgufValue> i32s(512, GgufValue::of_i32(0));
  img.set("tokenizer.ggml.scores", raw(GgufValue::of_array(GgufType::I32, i32s)));
  check_error({"tokenizer.ggml.scores", "array of f32", "array of i32"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.token_type", raw(GgufValue::of_array(GgufType::U32, ints)));
  check_error({"tokenizer.ggml.token_type", "array of i32", "array of u32"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.tokens", str("<unk>"));
  check_error({"tokenizer.ggml.tokens", "array", "string"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.merges", raw(GgufValue::of_array(GgufType::U32, ints)));
  check_error({"tokenizer.ggml.merges", "array of string", "array of u32"});
}

TEST_F(HostileGguf, TokenizerArraysOfWrongLength) {
  GgufValue scores = *shipped_gguf().find("tokenizer.ggml.scores");
  scores.array.pop_back();
  img.set("tokenizer.ggml.scores", raw(scores));
  check_error({"tokenizer.ggml.scores", "512 scores", "found 511"});
  img = shipped_gguf_image();
  GgufValue types = *shipped_gguf().find("tokenizer.ggml.token_type");
  types.array.push_back(GgufValue::of_i32(1));
  img.set("tokenizer.ggml.token_type", raw(types));
  check_error({"tokenizer.ggml.token_type", "512 types", "found 513"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.tokens", raw(GgufValue::of_array(GgufType::STRING, {})));
  check_error({"tokenizer.ggml.tokens", "at least one token"});
}

TEST_F(HostileGguf, TokenizerVocabularyDiffersFromModel) {
  // 511 tokens, scores and types: consistent with each other, not with the
  // 512-row embedding.
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    GgufValue v = *shipped_gguf().find(key);
    v.array.pop_back();
    img.set(key, raw(v));
  }
  check_error({"vocabulary size", "512 (the model's)", "found 511"});
}

TEST_F(HostileGguf, TokenTypeOutOfRange) {
  img.set("tokenizer.ggml.token_type", with_element("tokenizer.ggml.token_type", 7, GgufValue::of_i32(7)));
  check_error({"tokenizer.ggml.token_type[7]", "1..6", "found 7"});
  img.set("tokenizer.ggml.token_type", with_element("tokenizer.ggml.token_type", 9, GgufValue::of_i32(-1)));
  check_error({"tokenizer.ggml.token_type[9]", "found -1"});
}

TEST_F(HostileGguf, MalformedByteTokens) {
  // Token 3 is "<0x00>" with type 6 (byte) in the shipped file.
  for (const std::string piece : {"<0x-1>", "<0xZZ>", "<0x4>", "<0x100>", "<0xg0>", ""}) {
    img.set("tokenizer.ggml.tokens", with_element("tokenizer.ggml.tokens", 3, GgufValue::of_string(piece)));
    const std::string quoted = fmt::format("\"{}\"", piece);
    check_error({"token 3 (a byte token)", "two hex digits", quoted});
  }
}

TEST_F(HostileGguf, SpecialTokenIdsOutOfRange) {
  img.set("tokenizer.ggml.bos_token_id", u32(512));
  check_error({"tokenizer.ggml.bos_token_id", "token id < 512", "found 512"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.eos_token_id", u64(~0ull));
  check_error({"tokenizer.ggml.eos_token_id", "token id < 512"});
  img = shipped_gguf_image();
  img.set("tokenizer.ggml.unknown_token_id", i32(-1));
  check_error({"tokenizer.ggml.unknown_token_id", "non-negative"});
}

TEST_F(HostileGguf, UnsupportedTokenizerModel) {
  // A gpt2 (byte-level BPE) vocabulary: the weights load and run (bench,
  // convert); what needs text fails naming the file and the tokenizer, and
  // a rewrite of the file keeps the tokenizer's keys.
  img.set("tokenizer.ggml.model", str("gpt2"));
  img.set("tokenizer.ggml.pre", str("qwen2"));
  {
    const std::string path = img.write();
    LoadedModel m = load_model(path);
    EXPECT_FALSE(m.tokenizer);
    std::string msg;
    try {
      m.require_tokenizer();
    } catch (const Error& e) {
      msg = e.what();
    }
    check_message(msg, path, {"tokenizer", "\"gpt2\"", "not yet"});
    const std::string copy = temp_dir() + "/copy.gguf";
    write_gguf(m.source, copy);
    GgufFile g(copy);
    EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "qwen2");
    EXPECT_TRUE(g.get_array_opt("tokenizer.ggml.tokens", GgufType::STRING));
  }
  img = shipped_gguf_image();
  img.erase("tokenizer.ggml.tokens");
  check_error({"tokenizer.ggml.tokens", "none"});
}

TEST_F(HostileGguf, MalformedMerges) {
  img.set("tokenizer.ggml.merges",
          raw(GgufValue::of_array(GgufType::STRING, {GgufValue::of_string("a b"), GgufValue::of_string("ab")})));
  check_error({"tokenizer merges[1]", "\"left right\"", "\"ab\""});
}

TEST_F(HostileGguf, TokenizerFileWithoutTokenizer) {
  // -z pointing at a GGUF that has no tokenizer.
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                          "tokenizer.ggml.token_type"})
    img.erase(key);
  const std::string tok = img.write("tok.gguf");
  EXPECT_LOAD_ERROR(model_path("stories260K.bin"), tok, tok, "tokenizer.ggml.model", "none");
}

// ---------------------------------------------------------------------------
// llama2.c checkpoints

std::string tok512() { return model_path("tok512.bin"); }

class HostileLlama2c : public ::testing::Test {
 protected:
  std::string legacy = read_file(model_path("stories260K.bin"));
  std::string v1 = read_file(data_path("models/stories260K_v1.bin"));

  // Header fields: legacy offsets 0,4,..,24; v1 offsets 8,12,..,32.
  enum Field { kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeqLen };

  void check_error(const std::string& bytes, std::initializer_list<std::string> needles,
                    const std::string& tokenizer = tok512()) {
    const std::string path = temp_dir() + "/model.bin";
    write_file(path, bytes);
    SCOPED_TRACE("loading " + path);
    check_message(load_error(path, tokenizer), path, needles);
  }
  void check_legacy_error(Field f, int32_t v, std::initializer_list<std::string> needles) {
    std::string b = legacy;
    patch<int32_t>(b, 4 * f, v);
    SCOPED_TRACE("legacy field " + std::to_string(f) + " = " + std::to_string(v));
    check_error(b, needles);
  }
  void check_v1_error(Field f, int32_t v, std::initializer_list<std::string> needles) {
    std::string b = v1;
    patch<int32_t>(b, 8 + 4 * f, v);
    SCOPED_TRACE("v1 field " + std::to_string(f) + " = " + std::to_string(v));
    check_error(b, needles);
  }
};

TEST_F(HostileLlama2c, BaselinesLoad) {
  check_loads(model_path("stories260K.bin"), tok512());
  check_loads(data_path("models/stories260K_v1.bin"), tok512());
}

TEST_F(HostileLlama2c, LegacyDimNotAHeader) {
  // The legacy format has no magic: a dim outside 1..2^20 is "not llama2.c".
  for (int32_t dim : {0, -64, 1 << 21, std::numeric_limits<int32_t>::min()}) {
    std::string b = legacy;
    patch<int32_t>(b, 0, dim);
    check_error(b, {"format", "unknown magic"});
  }
}

TEST_F(HostileLlama2c, LegacyHeaderOutOfRange) {
  const int32_t kMin = std::numeric_limits<int32_t>::min(), kMax = std::numeric_limits<int32_t>::max();
  check_legacy_error(kHidden, 0, {"hidden_dim", "found 0"});
  check_legacy_error(kHidden, -1, {"hidden_dim", "found -1"});
  check_legacy_error(kHidden, kMax, {"hidden_dim", std::to_string(kMax)});
  check_legacy_error(kLayers, 0, {"n_layers", "1..4096", "found 0"});
  check_legacy_error(kLayers, kMin, {"n_layers", std::to_string(kMin)});
  check_legacy_error(kLayers, 100000, {"n_layers", "found 100000"});
  check_legacy_error(kHeads, 0, {"n_heads", "found 0"});
  check_legacy_error(kHeads, 65, {"n_heads", "1..64", "found 65"});
  check_legacy_error(kHeads, 7, {"n_heads", "divisor of dim 64"});
  check_legacy_error(kHeads, 64, {"n_heads", "even"});  // head size 1
  check_legacy_error(kKvHeads, 0, {"n_kv_heads", "found 0"});
  check_legacy_error(kKvHeads, 16, {"n_kv_heads", "1..8"});
  check_legacy_error(kKvHeads, 3, {"n_kv_heads", "divisor of n_heads 8"});
  check_legacy_error(kVocab, 0, {"vocab_size", "found 0"});
  check_legacy_error(kVocab, 1 << 23, {"vocab_size", std::to_string(1 << 23)});
  check_legacy_error(kVocab, kMin, {"vocab_size", "2147483648"});  // |INT32_MIN| (used to be UB)
  check_legacy_error(kVocab, kMax, {"vocab_size", std::to_string(kMax)});
  check_legacy_error(kSeqLen, 0, {"seq_len", "found 0"});
  check_legacy_error(kSeqLen, -5, {"seq_len", "found -5"});
  check_legacy_error(kSeqLen, kMax, {"seq_len", std::to_string(kMax)});
}

TEST_F(HostileLlama2c, LegacyHeaderInconsistentWithWeights) {
  // Too many layers: the weights run out.
  check_legacy_error(kLayers, 6, {"blk.", "truncated, or header does not match the weights"});
  check_legacy_error(kLayers, 4096, {"blk.", "truncated, or header does not match the weights"});
  check_legacy_error(kHidden, 1 << 22, {"blk.0.ffn_gate.weight", "truncated, or header does not match"});
  check_legacy_error(kSeqLen, 1 << 20, {"freq_cis tables", "truncated, or header does not match"});
  // Negative vocab: an unshared classifier that the file does not hold.
  check_legacy_error(kVocab, -512, {"output.weight", "truncated, or header does not match"});
  // Too few layers / smaller sizes: the weights would be misread silently.
  check_legacy_error(kLayers, 4, {"size", "header does not match the weights"});
  check_legacy_error(kSeqLen, 256, {"size", "header does not match the weights"});
  check_legacy_error(kHidden, 171, {"size", "header does not match the weights"});
  // Extra bytes after a consistent header.
  check_error(legacy + std::string(64, '\0'), {"size", "header does not match the weights"});
}

TEST_F(HostileLlama2c, LegacyVocabSmallerThanWeights) {
  // vocab 256 (shared classifier) read from a file holding 512 rows: the
  // sizes no longer add up.
  check_legacy_error(kVocab, 256, {"size", "header does not match the weights"});
}

TEST_F(HostileLlama2c, V1BadVersionAndFlags) {
  std::string b = v1;
  for (int32_t version : {0, 2, -1, 0x01000000}) {
    patch<int32_t>(b, 4, version);
    check_error(b, {"version", std::to_string(version)});
  }
  b = v1;
  b[36] = 2;
  check_error(b, {"shared_classifier", "0 or 1", "found 2"});
  b[36] = 0;  // unshared: output.weight would follow the weights
  check_error(b, {"output.weight", "truncated, or header does not match"});
  // A header cut before its 256 bytes of padding.
  check_error(v1.substr(0, 200), {"header padding", "200"});
}

TEST_F(HostileLlama2c, V1HeaderOutOfRangeOrInconsistent) {
  // v1 has a magic, so even dim is reported by name.
  check_v1_error(kDim, 0, {"dim", "found 0"});
  check_v1_error(kDim, -1, {"dim", "found -1"});
  check_v1_error(kDim, 1 << 21, {"dim", std::to_string(1 << 21)});
  check_v1_error(kDim, 128, {"truncated, or header does not match"});
  check_v1_error(kLayers, 0, {"n_layers", "found 0"});
  check_v1_error(kLayers, 4, {"size", "header does not match the weights"});
  check_v1_error(kLayers, 6, {"truncated, or header does not match"});
  check_v1_error(kHeads, 0, {"n_heads", "found 0"});
  check_v1_error(kHeads, 6, {"n_heads", "divisor of dim 64"});
  check_v1_error(kKvHeads, 9, {"n_kv_heads", "1..8"});
  check_v1_error(kVocab, -512, {"vocab_size", "found -512"});  // v1 has an explicit flag
  check_v1_error(kVocab, std::numeric_limits<int32_t>::min(), {"vocab_size"});
  check_v1_error(kVocab, 1000, {"truncated, or header does not match"});
  check_v1_error(kSeqLen, 0, {"seq_len", "found 0"});
}

// ---------------------------------------------------------------------------
// llama2.c tokenizer.bin (with the legacy checkpoint; vocab_size 512)

class HostileTokenizerBin : public ::testing::Test {
 protected:
  std::string tok = read_file(tok512());

  // Offset of token i's record (score, length, bytes).
  size_t token_offset(size_t i) const {
    size_t off = 4;
    for (size_t k = 0; k < i; ++k) {
      int32_t len;
      std::memcpy(&len, tok.data() + off + 4, 4);
      off += 8 + static_cast<size_t>(len);
    }
    return off;
  }
  std::string piece(size_t i) const {
    const size_t off = token_offset(i);
    int32_t len;
    std::memcpy(&len, tok.data() + off + 4, 4);
    return tok.substr(off + 8, static_cast<size_t>(len));
  }
  void check_error(const std::string& bytes, std::initializer_list<std::string> needles) {
    const std::string path = temp_dir() + "/tokenizer.bin";
    write_file(path, bytes);
    SCOPED_TRACE("loading tokenizer " + path);
    check_message(load_error(model_path("stories260K.bin"), path), path, needles);
  }
};

TEST_F(HostileTokenizerBin, Layout) {
  // The offsets the cases rely on.
  ASSERT_EQ(piece(3), "<0x00>");
  ASSERT_EQ(piece(68), "<0x41>");
  ASSERT_EQ(token_offset(512), tok.size());
}

TEST_F(HostileTokenizerBin, MaxTokenLengthOutOfRange) {
  for (int32_t v : {0, -1, 4097, std::numeric_limits<int32_t>::min()}) {
    std::string b = tok;
    patch<int32_t>(b, 0, v);
    check_error(b, {"max_token_length", "1..4096", std::to_string(v)});
  }
  std::string b = tok;
  patch<int32_t>(b, 0, 5);  // shorter than the longest piece (7)
  check_error(b, {"length", "0..5 (max_token_length)"});
}

TEST_F(HostileTokenizerBin, TokenLengthNegativeOrPastEnd) {
  std::string b = tok;
  patch<int32_t>(b, token_offset(100) + 4, -1);
  check_error(b, {"token 100 length", "found -1"});
  patch<int32_t>(b, token_offset(100) + 4, std::numeric_limits<int32_t>::min());
  check_error(b, {"token 100 length", "-2147483648"});
  b = tok;
  patch<int32_t>(b, token_offset(100) + 4, 1000);
  check_error(b, {"token 100 length", "found 1000"});
  // Allowed by max_token_length, but past the end of file.
  b = tok;
  patch<int32_t>(b, 0, 4096);
  patch<int32_t>(b, token_offset(511) + 4, 4000);
  check_error(b, {"token 511", "4000 bytes", "truncated"});
}

TEST_F(HostileTokenizerBin, MalformedByteTokens) {
  for (const char* bad : {"<0x-1>", "<0xZZ>", "<0x+4>", "<0x4g>"}) {
    std::string b = tok;
    b.replace(token_offset(68) + 8, 6, bad);  // "<0x41>"
    check_error(b, {"token 68 (a byte token)", "two hex digits", bad});
  }
}

TEST_F(HostileTokenizerBin, TrailingBytes) {
  check_error(tok + "xyz", {"size", "exactly 512 tokens", "3 bytes left"});
}

TEST_F(HostileTokenizerBin, VocabularyLargerThanFile) {
  // A model with vocab 2048 asks tok512.bin for 2048 tokens.
  const std::string dir = data_path("models/tinystories-656k");
  EXPECT_LOAD_ERROR(dir, tok512(), tok512(), "vocabulary", "2048 tokens");
}

// ---------------------------------------------------------------------------
// safetensors + config.json + tokenizer.json (TinyStories-656K copied to a
// temporary directory and corrupted there)

class HostileSafetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    for (const char* f : {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(data_path(std::string("models/tinystories-656k/") + f), dir + "/" + f);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
    for (const auto& e : fs::directory_iterator(dir))
      fs::permissions(e.path(), fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
    st = dir + "/model.safetensors";
    config = dir + "/config.json";
    tokjson = dir + "/tokenizer.json";
    const std::string bytes = read_file(st);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    header_text = bytes.substr(8, n);
    tensor_data = bytes.substr(8 + n);
  }

  json header() const { return json::parse(header_text); }
  // Rewrites model.safetensors with `text` as its header (padded to 8).
  void write_header_text(std::string text) {
    text.resize((text.size() + 7) / 8 * 8, ' ');
    write_file(st, le<uint64_t>(text.size()) + text + tensor_data);
  }
  void write_header(const json& h) { write_header_text(h.dump()); }
  void edit_json(const std::string& path, const std::function<void(json&)>& edit) {
    json j = json::parse(read_file(path));
    edit(j);
    write_file(path, j.dump());
  }
  void check_error(const std::string& where, std::initializer_list<std::string> needles) {
    SCOPED_TRACE("loading " + dir);
    check_message(load_error(dir), where, needles);
  }

  std::string dir, st, config, tokjson, header_text, tensor_data;
};

TEST_F(HostileSafetensors, BaselineCopyLoads) {
  check_loads(dir);
  // Re-encoded header (no spaces, other key order) loads too.
  write_header(header());
  check_loads(dir);
  check_loads(st);  // the .safetensors file itself, config.json beside it
}

TEST_F(HostileSafetensors, HeaderLengthAbsurdOrPastEnd) {
  const uint64_t rss = peak_rss();
  for (uint64_t n : std::initializer_list<uint64_t>{~0ull, 1ull << 62, 200ull << 20, tensor_data.size() + header_text.size() + 1}) {
    write_file(st, le<uint64_t>(n) + header_text + tensor_data);
    check_error(st, {"header length", std::to_string(n)});
  }
  EXPECT_LT(peak_rss() - rss, 256ull << 20) << "a length was allocated before it was checked";
}

TEST_F(HostileSafetensors, HeaderNotJsonObject) {
  write_header_text("{\"lm_head.weight\": {");
  check_error(st, {"invalid JSON"});
  write_header_text("[1, 2, 3]");
  check_error(st, {"header", "a JSON object"});
  write_header_text("{\"lm_head.weight\": 5}");
  check_error(st, {"tensor 'lm_head.weight'", "a JSON object"});
}

TEST_F(HostileSafetensors, UnknownDtype) {
  json h = header();
  h["model.norm.weight"]["dtype"] = "F64";
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' dtype", "F32, F16 or BF16", "F64"});
  h["model.norm.weight"]["dtype"] = 32;
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight'", "dtype"});
}

TEST_F(HostileSafetensors, ShapeWithTooManyOrZeroDims) {
  json h = header();
  h["model.norm.weight"]["shape"] = {128, 1, 1, 1, 1};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' shape", "1 to 4 dimensions", "found 5"});
  h["model.norm.weight"]["shape"] = json::array();
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' shape", "found 0"});
  h["model.norm.weight"]["shape"] = {128, 0};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' shape", "positive dimensions"});
}

TEST_F(HostileSafetensors, ShapeProductOverflows) {
  json h = header();
  h["lm_head.weight"]["shape"] = {1ull << 32, 1ull << 32, 4};
  write_header(h);
  check_error(st, {"tensor 'lm_head.weight' shape", "below 2^50"});
  h["lm_head.weight"]["shape"] = {~0ull, ~0ull};
  write_header(h);
  check_error(st, {"tensor 'lm_head.weight' shape", "below 2^50"});
}

TEST_F(HostileSafetensors, ShapeOfWrongJsonType) {
  // Negative, fractional and out-of-range numbers are not dimensions (a
  // float-to-integer conversion of 1e300 would be undefined behaviour).
  for (const json& bad : {json{-1, 128}, json{1e300, 128}, json{2048.5, 128}, json{"2048", 128}, json(7)}) {
    json h = header();
    h["lm_head.weight"]["shape"] = bad;
    write_header(h);
    check_error(st, {"tensor 'lm_head.weight'", "shape"});
  }
}

TEST_F(HostileSafetensors, DataOffsetsPastEndOrInconsistent) {
  json h = header();
  const uint64_t size = tensor_data.size();
  h["model.norm.weight"]["data_offsets"] = {size, size + 512};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' data_offsets", "within the " + std::to_string(size)});
  h["model.norm.weight"]["data_offsets"] = {~0ull - 10, ~0ull};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' data_offsets"});
  h["model.norm.weight"]["data_offsets"] = {512, 0};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' data_offsets"});
  h["model.norm.weight"]["data_offsets"] = {0, 500};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' data_offsets", "512 bytes for shape and dtype", "found 500"});
  h["model.norm.weight"]["data_offsets"] = {0};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight' data_offsets"});
  h["model.norm.weight"]["data_offsets"] = {-512, 0};
  write_header(h);
  check_error(st, {"tensor 'model.norm.weight'", "data_offsets"});
}

TEST_F(HostileSafetensors, DuplicateTensorName) {
  // JSON parsers keep the last of duplicate keys silently; the loader must not.
  const std::string entry = "\"model.norm.weight\":" + header()["model.norm.weight"].dump();
  write_header_text("{" + entry + "," + header_text.substr(1));
  check_error(st, {"model.norm.weight", "duplicate"});
}

TEST_F(HostileSafetensors, MissingRequiredTensors) {
  json h = header();
  h.erase("model.layers.1.mlp.up_proj.weight");
  write_header(h);
  check_error(dir, {"tensor 'blk.1.ffn_up.weight'", "missing"});
  h = header();
  h.erase("model.layers.0.self_attn.q_proj.weight");
  write_header(h);
  check_error(dir, {"tensor 'blk.0.attn_q.weight'", "missing"});
  h = header();
  h.erase("lm_head.weight");  // tied: the only copy of the embedding
  write_header(h);
  check_error(st, {"tensor 'model.embed_tokens.weight'", "missing"});
}

TEST_F(HostileSafetensors, TensorShapeInconsistent) {
  json h = header();
  h["model.layers.0.self_attn.q_proj.weight"]["shape"] = {100, 128};  // 100 rows is not n_heads * 16
  h["model.layers.0.self_attn.q_proj.weight"]["data_offsets"][1] =
      h["model.layers.0.self_attn.q_proj.weight"]["data_offsets"][0].get<uint64_t>() + 100 * 128 * 4;
  write_header(h);
  check_error(st, {"tensor 'model.layers.0.self_attn.q_proj.weight' shape", "[100, 128]"});
  h = header();
  h["model.layers.1.mlp.down_proj.weight"]["shape"] = {384, 128};  // transposed
  write_header(h);
  check_error(dir, {"tensor 'blk.1.ffn_down.weight' shape", "[128, 384]", "[384, 128]"});
}

TEST_F(HostileSafetensors, ConfigInvalid) {
  write_file(config, "{\"hidden_size\": 128,");
  check_error(config, {"invalid JSON"});
  write_file(config, "[]");
  check_error(config, {"architectures", "none"});
}

TEST_F(HostileSafetensors, ConfigWrongArchitecture) {
  edit_json(config, [](json& j) {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
  });
  check_error(config, {"architectures", "GPT2LMHeadModel"});
  edit_json(config, [](json& j) {
    j["architectures"] = {"LlamaForCausalLM"};
    j["hidden_act"] = "gelu";
  });
  check_error(config, {"hidden_act", "\"gelu\""});
  edit_json(config, [](json& j) {
    j["hidden_act"] = "silu";
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  });
  check_error(config, {"rope_scaling"});
}

TEST_F(HostileSafetensors, ConfigFieldsMissingOrOfWrongType) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "vocab_size"}) {
    SCOPED_TRACE(key);
    SetUp();
    edit_json(config, [&](json& j) { j.erase(key); });
    check_error(config, {key, "a JSON field", "none"});
    for (const json& bad : {json("128"), json(-128), json(1e300), json(12.5), json(true), json::array()}) {
      edit_json(config, [&](json& j) { j[key] = bad; });
      check_error(config, {key, "a value of the right type", bad.dump()});
    }
  }
  SetUp();
  edit_json(config, [](json& j) { j["tie_word_embeddings"] = 1; });
  check_error(config, {"tie_word_embeddings"});
  edit_json(config, [](json& j) {
    j["tie_word_embeddings"] = true;
    j["rms_norm_eps"] = "small";
  });
  check_error(config, {"rms_norm_eps"});
  edit_json(config, [](json& j) {
    j["rms_norm_eps"] = 1e-6;
    j["bos_token_id"] = 1ull << 40;  // does not fit an int32 token id
  });
  check_error(config, {"bos_token_id"});
}

TEST_F(HostileSafetensors, ConfigBlockCountZeroHugeOrInconsistent) {
  edit_json(config, [](json& j) { j["num_hidden_layers"] = 0; });
  check_error(config, {"num_hidden_layers", "found 0"});
  // Huge: must fail at once, not loop over 10^18 layer names.
  edit_json(config, [](json& j) { j["num_hidden_layers"] = 1000000000000000000ull; });
  check_error(config, {"num_hidden_layers", "1000000000000000000"});
  edit_json(config, [](json& j) { j["num_hidden_layers"] = 3; });
  check_error(dir, {"tensor 'blk.2.attn_norm.weight'", "missing"});
  edit_json(config, [](json& j) { j["num_hidden_layers"] = 1; });  // layer 1 would be ignored
  check_error(config, {"num_hidden_layers", "model.layers.1."});
}

TEST_F(HostileSafetensors, ConfigHeadCountsZeroHugeOrInconsistent) {
  edit_json(config, [](json& j) { j["num_attention_heads"] = 0; });
  check_error(config, {"num_attention_heads", "divisor of hidden_size 128", "found 0"});
  edit_json(config, [](json& j) { j["num_attention_heads"] = 1ull << 40; });
  check_error(config, {"num_attention_heads", "divisor of hidden_size 128"});
  edit_json(config, [](json& j) { j["num_attention_heads"] = 7; });
  check_error(config, {"num_attention_heads", "found 7"});
  edit_json(config, [](json& j) { j["num_attention_heads"] = 128; });  // head size 1
  check_error(config, {"num_attention_heads", "even head size"});
  edit_json(config, [](json& j) { j["num_attention_heads"] = 16; });  // q rows 128 = 16 * 8: fine; k is not
  check_error(dir, {"tensor 'blk.0.attn_k.weight' shape", "[32, 128]", "[64, 128]"});
  edit_json(config, [](json& j) {
    j["num_attention_heads"] = 8;
    j["num_key_value_heads"] = 0;
  });
  check_error(dir, {"head_count_kv", "found 0"});
  edit_json(config, [](json& j) { j["num_key_value_heads"] = 3; });
  check_error(dir, {"head_count_kv", "divisor of head_count 8"});
  edit_json(config, [](json& j) { j["num_key_value_heads"] = 8; });
  check_error(dir, {"tensor 'blk.0.attn_k.weight' shape", "[128, 128]", "[64, 128]"});
  edit_json(config, [](json& j) { j["num_key_value_heads"] = 1000; });
  check_error(dir, {"head_count_kv", "1..8"});
}

TEST_F(HostileSafetensors, ConfigHiddenSizeZeroOrHuge) {
  // hidden_size 0 once divided by zero (head size 0) while permuting q/k.
  edit_json(config, [](json& j) { j["hidden_size"] = 0; });
  check_error(config, {"hidden_size", "found 0"});
  edit_json(config, [](json& j) { j["hidden_size"] = 1ull << 40; });  // head size 2^37
  check_error(st, {"tensor 'model.layers.0.self_attn.q_proj.weight' shape", "[n_heads * 137438953472"});
  edit_json(config, [](json& j) { j["hidden_size"] = 256; });
  check_error(dir, {"shape"});
}

TEST_F(HostileSafetensors, ConfigOtherValuesOutOfRange) {
  edit_json(config, [](json& j) { j["vocab_size"] = 0; });
  check_error(dir, {"vocab_size", "found 0"});
  edit_json(config, [](json& j) { j["vocab_size"] = 4096; });
  check_error(dir, {"tensor 'token_embd.weight' shape", "[4096, 128]", "[2048, 128]"});
  edit_json(config, [](json& j) {
    j["vocab_size"] = 2048;
    j["intermediate_size"] = 385;
  });
  check_error(dir, {"tensor 'blk.0.ffn_", "shape", "385"});
  edit_json(config, [](json& j) {
    j["intermediate_size"] = 384;
    j["max_position_embeddings"] = 0;
  });
  check_error(dir, {"context_length", "found 0"});
  edit_json(config, [](json& j) {
    j["max_position_embeddings"] = 512;
    j["rope_theta"] = 1e300;  // finite as a double, not as the float it becomes
  });
  check_error(dir, {"rope.freq_base", "1e+300"});
  edit_json(config, [](json& j) {
    j["rope_theta"] = 0.5;
  });
  check_error(dir, {"rope.freq_base", "0.5"});
  edit_json(config, [](json& j) {
    j["rope_theta"] = 10000.0;
    j["rms_norm_eps"] = -1e-6;
  });
  check_error(dir, {"layer_norm_rms_epsilon", "(0, 1)"});
}

TEST_F(HostileSafetensors, MissingConfig) {
  fs::remove(config);
  check_error(dir, {"config.json", "none"});
}

TEST_F(HostileSafetensors, TokenizerJsonInvalid) {
  write_file(tokjson, "{\"model\": {\"type\": \"BPE\", ");
  check_error(tokjson, {"invalid JSON"});
  write_file(tokjson, "{}");
  check_error(tokjson, {"model", "none"});
  edit_json(tokjson, [](json& j) { j = {{"model", {{"type", "WordPiece"}, {"vocab", json::object()}}}}; });
  check_error(tokjson, {"model.type", "\"BPE\"", "\"WordPiece\""});
}

TEST_F(HostileSafetensors, TokenizerJsonVocab) {
  edit_json(tokjson, [](json& j) { j["model"]["vocab"] = json::array(); });
  check_error(tokjson, {"model.vocab", "an object"});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["vocab"]["▁and▁"] = "x"; });
  check_error(tokjson, {"model.vocab[\"▁and▁\"]", "an integer id"});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["vocab"]["▁and▁"] = -3; });
  check_error(tokjson, {"model.vocab[\"▁and▁\"]", "found -3"});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["vocab"]["▁and▁"] = 5000; });
  check_error(tokjson, {"model.vocab[\"▁and▁\"]", "a unique id < 2048", "found 5000"});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["vocab"]["▁and▁"] = 4; });  // the id of "!"
  check_error(tokjson, {"model.vocab", "a unique id", "found 4"});
}

TEST_F(HostileSafetensors, TokenizerJsonDuplicateVocabKey) {
  std::string text = read_file(tokjson);
  const size_t vocab = text.find("\"vocab\": {");
  ASSERT_NE(vocab, std::string::npos);
  text.insert(vocab + 10, "\"▁and▁\": 5,");
  write_file(tokjson, text);
  check_error(tokjson, {"▁and▁", "duplicate"});
}

TEST_F(HostileSafetensors, TokenizerJsonVocabularySizeDiffers) {
  edit_json(tokjson, [](json& j) {
    json& v = j["model"]["vocab"];
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it.value() == 2047) {
        v.erase(it);
        break;
      }
  });
  check_error(dir, {"vocabulary size", "2048 (the model's)", "found 2047"});
}

TEST_F(HostileSafetensors, TokenizerJsonAddedTokens) {
  const uint64_t rss = peak_rss();
  // An id far past the vocabulary must not size the vocabulary.
  for (const json& id : {json(4000000), json(1ull << 40), json(-1)}) {
    SetUp();
    edit_json(tokjson, [&](json& j) { j["added_tokens"][0]["id"] = id; });
    check_error(tokjson, {"added_tokens", id.dump()});
  }
  EXPECT_LT(peak_rss() - rss, 256ull << 20) << "an id sized an allocation before it was checked";
  SetUp();
  edit_json(tokjson, [](json& j) { j["added_tokens"][0]["id"] = "zero"; });
  check_error(tokjson, {"id", "\"zero\""});
  SetUp();
  edit_json(tokjson, [](json& j) { j["added_tokens"][0].erase("content"); });
  check_error(tokjson, {"content", "none"});
}

TEST_F(HostileSafetensors, TokenizerJsonMalformedByteTokens) {
  // A piece shaped like "<0xNN>" is a byte token; its digits must be hex.
  for (const char* bad : {"<0x-1>", "<0xZZ>", "<0x1G>"}) {
    SetUp();
    edit_json(tokjson, [&](json& j) {
      json& v = j["model"]["vocab"];
      const json id = v["▁and▁"];
      v.erase("▁and▁");
      v[bad] = id;
    });
    const std::string msg = load_error(dir);
    check_message(msg, dir, {"(a byte token)", "two hex digits", bad});
  }
}

TEST_F(HostileSafetensors, TokenizerJsonMerges) {
  edit_json(tokjson, [](json& j) { j["model"]["merges"][5] = 17; });
  check_error(tokjson, {"model.merges", "17"});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["merges"][5] = "ab"; });
  check_error(tokjson, {"model.merges[5]", "\"left right\""});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["merges"][5] = {"a", "b", "c"}; });
  check_error(tokjson, {"model.merges", "[a, b] pairs"});
}

TEST_F(HostileSafetensors, TokenizerJsonOtherFields) {
  edit_json(tokjson, [](json& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}}; });
  check_error(tokjson, {"pre_tokenizer", "ByteLevel"});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["fuse_unk"] = "yes"; });
  check_error(tokjson, {"fuse_unk", "\"yes\""});
  SetUp();
  edit_json(tokjson, [](json& j) { j["model"]["unk_token"] = 0; });
  check_error(tokjson, {"unk_token", "found 0"});
  SetUp();
  write_file(dir + "/tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
  check_error(dir + "/tokenizer_config.json", {"add_bos_token"});
  SetUp();
  edit_json(config, [](json& j) { j["eos_token_id"] = 2048; });
  check_error(dir, {"eos_token_id", "a token id < 2048", "found 2048"});
}

TEST_F(HostileSafetensors, JsonNestedTooDeep) {
  // JSON nested 200000 deep parses (nlohmann's parser is iterative) but
  // dump(), used for messages, recursed until the stack overflowed.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  std::string text = read_file(tokjson);
  const size_t pre = text.find("\"pre_tokenizer\": null");
  ASSERT_NE(pre, std::string::npos);
  text.replace(pre, 21, "\"pre_tokenizer\": " + deep);
  write_file(tokjson, text);
  check_error(tokjson, {"JSON nesting", "at most 64 levels"});
  SetUp();
  write_file(config, "{\"architectures\": " + deep + "}");
  check_error(config, {"JSON nesting"});
  SetUp();
  write_header_text("{\"lm_head.weight\": " + deep + "}");
  check_error(st, {"JSON nesting"});
}

TEST(HostilePaths, NameTooLongOrNotAFile) {
  // std::filesystem throws its own exception type for these; the loader must
  // turn them into ffn::Error.
  const std::string dir = temp_dir();
  const std::string long_name = dir + "/" + std::string(300, 'a') + ".gguf";
  EXPECT_LOAD_ERROR(long_name, "", long_name, "too long");
  EXPECT_LOAD_ERROR(long_name + "/model.safetensors", "", long_name, "too long");
  EXPECT_LOAD_ERROR(dir, "", dir, "config.json", "none");  // a directory without a model
  EXPECT_LOAD_ERROR(model_path("stories260K.bin"), dir, dir, "not a regular file");
  EXPECT_LOAD_ERROR("/dev/null", "", "/dev/null", "not a regular file");
}

TEST_F(HostileSafetensors, TokenizerJsonGivenWithZ) {
  // tokenizer.json given for a model of another vocabulary size.
  EXPECT_LOAD_ERROR(model_path("stories260K.bin"), tokjson, tokjson, "vocabulary size", "512 (the model's)",
                    "found 2048");
}

// ---------------------------------------------------------------------------
// Truncation at many offsets: an error naming the file before the end of the
// required data, a model at and after it.

struct Sweep {
  size_t cases = 0, errors = 0, loads = 0;
};

// Truncates a copy of `original` (placed at `path`) to every offset in
// `offsets`, largest first. `model` is what load_model opens (the file itself
// or its directory); with `as_tokenizer` the file is passed as the tokenizer
// of `model` instead. Loading must fail naming `path` below `required` bytes
// and succeed from there on.
Sweep truncation_sweep(const std::string& original, const std::string& path, std::vector<uint64_t> offsets,
                       uint64_t required, const std::string& model, const std::string& tokenizer) {
  fs::copy_file(original, path, fs::copy_options::overwrite_existing);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
  const uint64_t size = fs::file_size(path);
  std::sort(offsets.begin(), offsets.end(), std::greater<>());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  Sweep s;
  int reported = 0;
  auto report = [&](uint64_t off, const std::string& what) {
    if (++reported <= 10) ADD_FAILURE() << path << " truncated to " << off << " bytes: " << what;
  };
  for (uint64_t off : offsets) {
    if (off > size) continue;
    fs::resize_file(path, off);
    ++s.cases;
    try {
      LoadedModel m = load_model(model, tokenizer);
      ++s.loads;
      if (off < required) report(off, "loaded");
    } catch (const Error& e) {
      ++s.errors;
      const std::string msg = e.what();
      if (off >= required) report(off, "failed: " + msg);
      else if (msg.find(path) == std::string::npos) report(off, "message does not name the file: " + msg);
      else if (msg.find('\n') != std::string::npos) report(off, "message is not one line: " + msg);
    } catch (const std::exception& e) {
      report(off, std::string("not an ffn::Error but ") + typeid(e).name() + ": " + e.what());
    }
  }
  return s;
}

// Every offset below `header`, ~50 spread over the rest, and a few near the
// required end and the file end.
std::vector<uint64_t> sweep_offsets(uint64_t header, uint64_t required, uint64_t size) {
  std::vector<uint64_t> v;
  for (uint64_t o = 0; o <= header && o <= size; ++o) v.push_back(o);
  for (int k = 0; k <= 50; ++k) v.push_back(header + (size - header) * k / 50);
  for (uint64_t o : {required - 1, required, required + 1, size - 1, size})
    if (o <= size) v.push_back(o);
  return v;
}

TEST(HostileTruncation, Gguf) {
  // Required end: the end of the last tensor's data; the header ends at the
  // first tensor's data.
  const std::string original = model_path("stories260K.gguf");
  const std::string bytes = read_file(original);
  const GgufFile g(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "image");
  uint64_t header = bytes.size(), required = 0;
  for (const auto& t : g.tensors()) {
    const uint64_t begin = static_cast<uint64_t>(t.data - reinterpret_cast<const uint8_t*>(bytes.data()));
    header = std::min(header, begin);
    required = std::max(required, begin + t.bytes);
  }
  ASSERT_GT(header, 10000u);  // the 512-token vocabulary lives in the header
  const std::string path = temp_dir() + "/model.gguf";
  const Sweep s = truncation_sweep(original, path, sweep_offsets(header, required, bytes.size()), required, path, "");
  EXPECT_GT(s.errors, header);
  EXPECT_GE(s.loads, 1u);
}

TEST(HostileTruncation, Llama2cLegacy) {
  const std::string original = model_path("stories260K.bin");
  const uint64_t size = fs::file_size(original);
  const std::string path = temp_dir() + "/model.bin";
  const Sweep s = truncation_sweep(original, path, sweep_offsets(64, size, size), size, path, tok512());
  EXPECT_EQ(s.loads, 1u);  // the whole file only
}

TEST(HostileTruncation, Llama2cV1) {
  const std::string original = data_path("models/stories260K_v1.bin");
  const uint64_t size = fs::file_size(original);
  const std::string path = temp_dir() + "/model.bin";
  const Sweep s = truncation_sweep(original, path, sweep_offsets(300, size, size), size, path, tok512());
  EXPECT_EQ(s.loads, 1u);
}

TEST(HostileTruncation, TokenizerBin) {
  // Every offset of the whole file (6227 bytes).
  const std::string original = tok512();
  const uint64_t size = fs::file_size(original);
  const std::string path = temp_dir() + "/tokenizer.bin";
  const Sweep s =
      truncation_sweep(original, path, sweep_offsets(size, size, size), size, model_path("stories260K.bin"), path);
  EXPECT_EQ(s.cases, size + 1);
  EXPECT_EQ(s.loads, 1u);
}

TEST(HostileTruncation, Safetensors) {
  const std::string src = data_path("models/tinystories-656k");
  const std::string dir = temp_dir();
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(src + "/" + f, dir + "/" + f);
  const std::string original = src + "/model.safetensors";
  const uint64_t size = fs::file_size(original);
  const std::string bytes = read_file(original);
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  const std::string path = dir + "/model.safetensors";
  const Sweep s = truncation_sweep(original, path, sweep_offsets(8 + header_len, size, size), size, dir, "");
  EXPECT_EQ(s.loads, 1u);
}

TEST(HostileTruncation, JsonFiles) {
  // config.json and tokenizer.json cut at many points.
  const std::string src = data_path("models/tinystories-656k");
  for (const char* name : {"config.json", "tokenizer.json"}) {
    const std::string dir = temp_dir();
    for (const char* f : {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"})
      if (std::string(f) != name) fs::copy_file(src + "/" + f, dir + "/" + f);
    const std::string text = read_file(src + "/" + name);
    const uint64_t size = text.size();
    const uint64_t required = text.find_last_not_of(" \n") + 1;  // a final newline is optional
    std::vector<uint64_t> offsets;
    for (uint64_t o = 0; o < size; o += std::max<uint64_t>(1, size / 300)) offsets.push_back(o);
    for (uint64_t o = required - 3; o <= size; ++o) offsets.push_back(o);
    const Sweep s = truncation_sweep(src + "/" + name, dir + "/" + name, offsets, required, dir, "");
    EXPECT_EQ(s.loads, size - required + 1) << name;
  }
}

// ---------------------------------------------------------------------------
// The CLI: status 1 and exactly one line on stderr, "error: ...".

void check_cli_error(const std::string& args, const std::string& needle) {
  const auto r = test::run_command(test::ffn_binary() + " " + args);
  SCOPED_TRACE("ffn " + args);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

// Names taken from a file (GGUF keys, tensor names, JSON keys, the path
// itself) may contain a newline; the CLI escapes it to keep one line.
TEST(HostileCli, NamesWithNewlinesStayOnOneLine) {
  GgufImage img = shipped_gguf_image();
  img.kv.emplace_back("bad\nkey", u32(1));
  img.kv.emplace_back("bad\nkey", u32(1));
  check_cli_error("inspect -m '" + img.write() + "'", "duplicate");
}

TEST(HostileCli, GenerateAndInspectFailWithOneLine) {
  GgufImage bad_magic = shipped_gguf_image();
  bad_magic.magic = 0x12345678;
  GgufImage bad_version = shipped_gguf_image();
  bad_version.version = 7;
  GgufImage bad_dims = shipped_gguf_image();
  bad_dims.tensor("token_embd.weight").ne = {1ull << 32, 1ull << 32, 16};
  GgufImage missing = shipped_gguf_image();
  missing.erase_tensor("blk.1.attn_v.weight");
  GgufImage heads = shipped_gguf_image();
  heads.set("llama.attention.head_count", u32(0));

  std::string legacy = read_file(model_path("stories260K.bin"));
  patch<int32_t>(legacy, 8, 0);  // n_layers
  const std::string bad_bin = temp_dir() + "/bad.bin";
  write_file(bad_bin, legacy);
  const std::string bad_tok = temp_dir() + "/tok.bin";
  write_file(bad_tok, read_file(tok512()).substr(0, 5000));

  struct Case {
    std::string args, needle;
    bool inspect;  // inspect reads the config only: not for tensor errors
  };
  const std::vector<Case> cases = {
      {"-m '" + bad_magic.write() + "'", "format", true},
      {"-m '" + bad_version.write() + "'", "version", true},
      {"-m '" + bad_dims.write() + "'", "shape", true},
      {"-m '" + heads.write() + "'", "head_count", true},
      {"-m '" + missing.write() + "'", "blk.1.attn_v.weight", false},
      {"-m '" + bad_bin + "' -z '" + tok512() + "'", "n_layers", true},
      {"-m '" + model_path("stories260K.bin") + "' -z '" + bad_tok + "'", "truncated", true},
      {"-m '" + temp_dir() + "/does-not-exist.gguf'", "no such file", true},
      {"-m '" + model_path("stories260K.bin") + "'", "tokenizer", false},  // needs -z
  };
  for (const auto& c : cases) {
    check_cli_error("generate -n 4 " + c.args, c.needle);
    if (c.inspect) check_cli_error("inspect " + c.args, c.needle);
  }
}

}  // namespace
}  // namespace ffn
