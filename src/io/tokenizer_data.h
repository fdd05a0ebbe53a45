// The tokenizer as stored in a file, before it is turned into a Tokenizer
// (model/tokenizer.h). Every loader (GGUF, llama2.c tokenizer.bin, Hugging
// Face tokenizer.json) produces this one form.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ffn {

// Token kinds with GGUF's numbering (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

struct TokenizerData {
  // "llama": SentencePiece-style BPE. Pieces use U+2581 "▁" for a space;
  // byte-fallback tokens are <0xNN>. Merges come from `merges` (ranked,
  // Hugging Face style) when present, otherwise from `scores` (SentencePiece).
  std::string model = "llama";
  std::vector<std::string> tokens;
  std::vector<float> scores;      // empty or one per token
  std::vector<TokenType> types;   // one per token
  std::vector<std::string> merges;  // "left right", rank = position
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t unk_id = 0;
  bool add_bos = true;
  bool add_space_prefix = true;
  // Hugging Face BPE option: a run of unknown characters becomes one <unk>.
  bool fuse_unk = false;
};

// "<0x" + two characters + ">": the shape of a SentencePiece byte-fallback
// token. Formats without token types (llama2.c, tokenizer.json) mark pieces
// of this shape as Byte; the Tokenizer then insists the two characters are
// hex digits, so "<0xZZ>" is reported instead of silently mis-decoded.
inline bool has_byte_token_shape(const std::string& piece) {
  return piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>';
}

}  // namespace ffn
