// Tokenizer properties on the shipped texts: encode/decode round trips,
// dummy prefix, byte fallback, unknown characters, and speed-independent
// linearity (a whole file is one stream).
#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "io/llama2c_source.h"
#include "io/safetensors_source.h"
#include "model/tokenizer.h"
#include "test_util.h"

namespace ffn {
namespace {

// First byte where a and b differ, or npos. (gtest's string diff is quadratic
// on megabyte texts.)
size_t first_difference(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return i;
  return a.size() == b.size() ? std::string::npos : n;
}

Tokenizer tok512() {
  return Tokenizer(load_llama2c_tokenizer(test::data_path("models/tok512.bin"), 512), "tok512.bin");
}
Tokenizer tok656k() {
  const std::string p = test::data_path("models/tinystories-656k/tokenizer.json");
  return Tokenizer(load_tokenizer_json(p), p);
}

TEST(Tokenizer, RoundTripsOnShippedTexts) {
  const Tokenizer t = tok512();
  for (const char* f : {"text/tinystories_valid_head.txt", "text/tinyshakespeare.txt"}) {
    const std::string text = read_text_file(test::data_path(f));
    const auto ids = t.encode(text);
    EXPECT_GT(ids.size(), text.size() / 8) << f;
    EXPECT_EQ(first_difference(t.decode(ids), text), std::string::npos) << f;
  }
}

TEST(Tokenizer, HuggingFaceBpeRoundTripsWhereEveryCharacterIsKnown) {
  // The 656K vocabulary is ASCII-only with no byte tokens and lacks '&':
  // tiny Shakespeare with '&' spelled out round-trips; anything else becomes <unk>.
  const Tokenizer t = tok656k();
  std::string text = read_text_file(test::data_path("text/tinyshakespeare.txt")).substr(0, 200000);
  for (size_t i; (i = text.find('&')) != std::string::npos;) text.replace(i, 1, "and");
  EXPECT_EQ(first_difference(t.decode(t.encode(text)), text), std::string::npos);
  const auto ids = t.encode("He said \xe2\x80\x9chi\xe2\x80\x9d");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), t.data().unk_id), 2) << "one fused <unk> per run of unknown characters";
}

TEST(Tokenizer, DummyPrefixAndSpaces) {
  const Tokenizer t = tok512();
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(t.decode(t.encode(" x")), " x");
  EXPECT_EQ(t.decode(t.encode("a  b   c ")), "a  b   c ");
  EXPECT_EQ(t.piece(t.encode("Once")[0]).front(), ' ') << "first piece carries the dummy-prefix space";
}

TEST(Tokenizer, ByteFallbackForCharactersOutsideTheVocabulary) {
  const Tokenizer t = tok512();
  const std::string text = "\xf0\x9f\x99\x82";  // U+1F642, not a tok512 piece
  const auto ids = t.encode(text);
  // dummy prefix, then four byte tokens <0xF0> <0x9F> <0x99> <0x82> (id = byte + 3)
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[1], 0xf0 + 3);
  EXPECT_EQ(ids[4], 0x82 + 3);
  EXPECT_EQ(t.decode(ids), text);
  // Invalid UTF-8 goes byte by byte and comes back unchanged.
  const std::string bad = "a\xff\xc3(b";
  EXPECT_EQ(t.decode(t.encode(bad)), bad);
}

TEST(Tokenizer, ControlTokensAreNeverProducedFromText) {
  const Tokenizer t = tok512();
  for (int32_t id : t.encode("<s> </s> <unk>")) {
    EXPECT_NE(id, t.bos());
    EXPECT_NE(id, t.eos());
    EXPECT_NE(id, 0);
  }
  EXPECT_EQ(t.piece(t.bos()), "");
}

TEST(Tokenizer, EncodesAWholeFileAsOneStream) {
  // 1.1 MB in one call: the heap-based merge loop is O(n log n); a quadratic
  // one would not finish within the test timeout.
  const Tokenizer t = tok512();
  const std::string text = read_text_file(test::data_path("text/tinyshakespeare.txt"));
  const auto ids = t.encode(text);
  EXPECT_EQ(first_difference(t.decode(ids), text), std::string::npos);
  // Encoding is local: a prefix of the text encodes to (almost) a prefix of the ids.
  const auto head = t.encode(text.substr(0, 1000));
  EXPECT_TRUE(std::equal(head.begin(), head.end() - 5, ids.begin()));
}

}  // namespace
}  // namespace ffn
