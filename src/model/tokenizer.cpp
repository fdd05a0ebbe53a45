#include "model/tokenizer.h"

#include <fmt/format.h>

#include <queue>

#include "core/error.h"

namespace ffn {

namespace {

const std::string kSpace = "\xe2\x96\x81";  // U+2581 "▁"

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Length of the UTF-8 sequence starting at s[i]; invalid or truncated
// sequences count as one byte (which then goes to byte fallback).
size_t utf8_len(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 1;
  return n;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerData data, const std::string& where) : data_(std::move(data)) {
  const size_t n = data_.tokens.size();
  if (n == 0) fail(where, "tokenizer tokens", "at least one token", "0");
  if (data_.types.size() != n)
    fail(where, "tokenizer token types", fmt::format("{} (one per token)", n), std::to_string(data_.types.size()));
  if (!data_.scores.empty() && data_.scores.size() != n)
    fail(where, "tokenizer scores", fmt::format("{} (one per token)", n), std::to_string(data_.scores.size()));
  for (const auto& [field, id] : {std::pair<const char*, int32_t>{"bos_token_id", data_.bos_id},
                                  {"eos_token_id", data_.eos_id}, {"unknown_token_id", data_.unk_id}})
    if (id < 0 || static_cast<size_t>(id) >= n)
      fail(where, field, fmt::format("a token id < {}", n), std::to_string(id));

  std::fill(std::begin(byte_token_), std::end(byte_token_), -1);
  byte_value_.assign(n, -1);
  piece_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = data_.tokens[i];
    if (data_.types[i] == TokenType::Byte) {
      const int hi = p.size() == 6 ? hex_digit(p[3]) : -1, lo = p.size() == 6 ? hex_digit(p[4]) : -1;
      if (!has_byte_token_shape(p) || hi < 0 || lo < 0)
        fail(where, fmt::format("token {} (a byte token)", i), "\"<0xNN>\" with two hex digits",
             "\"" + p + "\"");
      byte_value_[i] = static_cast<int16_t>(hi * 16 + lo);
      if (byte_token_[hi * 16 + lo] < 0) byte_token_[hi * 16 + lo] = static_cast<int32_t>(i);
      continue;
    }
    // Control/unknown tokens are never produced from text (a literal "<s>"
    // in a story is text, not BOS).
    if (data_.types[i] == TokenType::Control || data_.types[i] == TokenType::Unknown) continue;
    piece_to_id_.emplace(p, static_cast<int32_t>(i));  // first id wins on duplicates
  }
  for (size_t r = 0; r < data_.merges.size(); ++r) {
    const std::string& m = data_.merges[r];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos)
      fail(where, fmt::format("tokenizer merges[{}]", r), "\"left right\"", "\"" + m + "\"");
    const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    auto l = piece_to_id_.find(left), rr = piece_to_id_.find(right), merged = piece_to_id_.find(left + right);
    if (l == piece_to_id_.end() || rr == piece_to_id_.end() || merged == piece_to_id_.end()) continue;
    merge_rank_.emplace(std::make_pair(l->second, rr->second),
                        Merge{-static_cast<float>(r), merged->second});
  }
}

bool Tokenizer::find_merge(int32_t left, int32_t right, Merge* out) const {
  if (!merge_rank_.empty()) {
    auto it = merge_rank_.find({left, right});
    if (it == merge_rank_.end()) return false;
    *out = it->second;
    return true;
  }
  if (byte_value_[left] >= 0 || byte_value_[right] >= 0) return false;
  auto it = piece_to_id_.find(data_.tokens[left] + data_.tokens[right]);
  if (it == piece_to_id_.end()) return false;
  *out = Merge{data_.scores.empty() ? 0.0f : data_.scores[it->second], it->second};
  return true;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::string norm;
  norm.reserve(text.size() + text.size() / 4 + 3);
  if (data_.add_space_prefix && !text.empty()) norm += kSpace;
  for (char c : text) {
    if (c == ' ') norm += kSpace;
    else norm += c;
  }

  // Symbols as a doubly linked list over a vector; `start` is the offset of
  // the first character, which orders ties (leftmost first).
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t start;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(norm.size());
  for (size_t i = 0; i < norm.size();) {
    const size_t len = utf8_len(norm, i);
    auto it = piece_to_id_.find(norm.substr(i, len));
    bool have_bytes = true;
    for (size_t k = 0; k < len; ++k) have_bytes &= byte_token_[static_cast<unsigned char>(norm[i + k])] >= 0;
    if (it != piece_to_id_.end()) {
      sym.push_back({it->second, 0, 0, uint32_t(i), true});
    } else if (have_bytes) {
      for (size_t k = 0; k < len; ++k)
        sym.push_back({byte_token_[static_cast<unsigned char>(norm[i + k])], 0, 0, uint32_t(i + k), true});
    } else if (!(data_.fuse_unk && !sym.empty() && sym.back().id == data_.unk_id)) {
      sym.push_back({data_.unk_id, 0, 0, uint32_t(i), true});
    }
    i += len;
  }
  const int32_t n = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i < n; ++i) {
    sym[i].prev = i - 1;
    sym[i].next = i + 1 < n ? i + 1 : -1;
  }

  struct Candidate {
    float priority;
    uint32_t start;
    int32_t left, right;      // symbol indices
    int32_t left_id, right_id;  // ids when queued: stale if they changed
    int32_t merged;
    bool operator<(const Candidate& o) const {  // max-heap: best priority, then leftmost
      if (priority != o.priority) return priority < o.priority;
      return start > o.start;
    }
  };
  std::priority_queue<Candidate> heap;
  auto push = [&](int32_t l) {
    if (l < 0 || sym[l].next < 0) return;
    const int32_t r = sym[l].next;
    Merge m;
    if (find_merge(sym[l].id, sym[r].id, &m))
      heap.push({m.priority, sym[l].start, l, r, sym[l].id, sym[r].id, m.id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& l = sym[c.left];
    if (!l.alive || l.next != c.right || l.id != c.left_id || sym[c.right].id != c.right_id) continue;
    Symbol& r = sym[c.right];
    l.id = c.merged;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    push(l.prev);
    push(c.left);
  }
  std::vector<int32_t> ids;
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
  return ids;
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (byte_value_[id] >= 0) return std::string(1, static_cast<char>(byte_value_[id]));
  if (data_.types[id] == TokenType::Control) return "";
  const std::string& p = data_.tokens[id];
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += p[i++];
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += piece(id);
  if (data_.add_space_prefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace ffn
