// SentencePiece-style BPE tokenizer ("▁" for spaces, <0xNN> byte fallback),
// the tokenizer of Llama-family models in every format we read.
//
// Encoding: prepend the dummy-prefix "▁" (if the model uses one), replace
// spaces by "▁", start from one symbol per UTF-8 character (characters not in
// the vocabulary become their byte tokens, or one <unk> when the vocabulary
// has none; fuse_unk joins runs of <unk>), then repeatedly merge the best
// adjacent pair, leftmost first on ties, until no pair merges. "Best" is the
// highest score of the merged piece (SentencePiece / llama2.c) or, when the
// file lists ranked merges (Hugging Face tokenizer.json), the lowest rank.
// A heap of candidate pairs makes this O(n log n), so a whole text file can
// be encoded as one stream.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tokenizer_data.h"

namespace ffn {

class Tokenizer {
 public:
  // Validates the data (ids in range, byte tokens well-formed); errors name
  // `where` (the file) and the field.
  Tokenizer(TokenizerData data, const std::string& where);

  // Token ids of `text`, without BOS.
  std::vector<int32_t> encode(std::string_view text) const;
  // Text of `ids`; the dummy-prefix space of the first piece is dropped.
  std::string decode(const std::vector<int32_t>& ids) const;
  // Raw text of one token: bytes for byte tokens, "▁" as " ", "" for control.
  std::string piece(int32_t id) const;

  int32_t bos() const { return data_.bos_id; }
  int32_t eos() const { return data_.eos_id; }
  bool add_bos() const { return data_.add_bos; }
  bool add_space_prefix() const { return data_.add_space_prefix; }
  int64_t vocab_size() const { return static_cast<int64_t>(data_.tokens.size()); }
  bool uses_merges() const { return !merge_rank_.empty(); }
  const TokenizerData& data() const { return data_; }

 private:
  struct Merge {
    float priority;  // higher merges first
    int32_t id;      // the merged token
  };
  bool find_merge(int32_t left, int32_t right, Merge* out) const;

  TokenizerData data_;
  std::unordered_map<std::string, int32_t> piece_to_id_;
  std::vector<int16_t> byte_value_;   // per token: 0..255 for byte tokens, -1 otherwise
  int32_t byte_token_[256];           // byte -> token id, -1 if absent
  std::map<std::pair<int32_t, int32_t>, Merge> merge_rank_;  // Hugging Face merges
};

}  // namespace ffn
