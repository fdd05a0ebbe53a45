#include "io/llama2c_source.h"

#include <fmt/format.h>

#include "core/byte_reader.h"
#include "core/error.h"

namespace ffn {

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42"
constexpr size_t kV1HeaderBytes = 256;
constexpr int32_t kMaxDim = 1 << 20;

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
  int64_t vocab_size;  // wider than stored: the legacy format negates it, and -INT32_MIN overflows
  int32_t seq_len;
};

Header read_header(ByteReader& r) {
  Header h;
  h.dim = r.read<int32_t>("dim");
  h.hidden_dim = r.read<int32_t>("hidden_dim");
  h.n_layers = r.read<int32_t>("n_layers");
  h.n_heads = r.read<int32_t>("n_heads");
  h.n_kv_heads = r.read<int32_t>("n_kv_heads");
  h.vocab_size = r.read<int32_t>("vocab_size");
  h.seq_len = r.read<int32_t>("seq_len");
  return h;
}

void check_range(const std::string& path, const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) fail(path, field, fmt::format("{}..{}", lo, hi), std::to_string(v));
}

// Lays out the float arrays of the checkpoint in file order and checks that
// they fit in the file.
class Layout {
 public:
  Layout(ModelSource& src, const uint8_t* base, size_t size, size_t offset)
      : src_(src), base_(base), size_(size), offset_(offset) {}

  // Adds `count` tensors of `shape` stored back to back (one per layer),
  // named by `name_of(i)`.
  template <typename NameOf>
  void stacked(int64_t count, std::vector<uint64_t> shape, NameOf name_of) {
    uint64_t elems = 1;
    for (uint64_t d : shape) elems *= d;  // each d < 2^20 and at most 2 dims: no overflow
    const uint64_t bytes = elems * 4;
    for (int64_t i = 0; i < count; ++i) {
      WeightTensor t;
      t.name = name_of(i);
      t.type = DType::F32;
      t.shape = shape;
      t.bytes = bytes;
      t.data = take(bytes, t.name);
      src_.add(std::move(t));
    }
  }
  void skip(uint64_t bytes, const std::string& what) { take(bytes, what); }
  size_t offset() const { return offset_; }

 private:
  const uint8_t* take(uint64_t bytes, const std::string& what) {
    if (bytes > size_ - offset_)
      fail(src_.path, what,
           fmt::format("{} bytes at offset {}", bytes, offset_),
           fmt::format("a file of {} bytes (truncated, or header does not match the weights)", size_));
    const uint8_t* p = base_ + offset_;
    offset_ += bytes;
    return p;
  }
  ModelSource& src_;
  const uint8_t* base_;
  size_t size_;
  size_t offset_;
};

}  // namespace

bool looks_like_llama2c(const uint8_t* data, size_t size) {
  if (size < 28) return false;
  uint32_t magic;
  std::memcpy(&magic, data, 4);
  if (magic == kMagicV1) return true;
  int32_t dim;
  std::memcpy(&dim, data, 4);
  return dim > 0 && dim <= kMaxDim;
}

ModelSource load_llama2c(const uint8_t* data, size_t size, const std::string& path,
                         std::shared_ptr<const void> owner) {
  ModelSource src;
  src.path = path;
  src.format = "llama2c";
  if (owner) src.owners.push_back(std::move(owner));

  ByteReader r(data, size, path);
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, data, 4);
  const bool v1 = magic == kMagicV1;
  bool shared_classifier;
  Header h;
  if (v1) {
    r.skip(4, "magic");
    const int32_t version = r.read<int32_t>("version");
    if (version != 1)
      fail(path, "version", "1 (version 2 is llama2.c's int8 export, not supported)",
           std::to_string(version));
    h = read_header(r);
    const uint8_t shared = r.read<uint8_t>("shared_classifier");
    if (shared > 1) fail(path, "shared_classifier", "0 or 1", std::to_string(shared));
    shared_classifier = shared == 1;
    r.seek(kV1HeaderBytes, "header padding");
  } else {
    h = read_header(r);
    shared_classifier = h.vocab_size > 0;
    h.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  }
  check_range(path, "dim", h.dim, 1, kMaxDim);
  check_range(path, "hidden_dim", h.hidden_dim, 1, 1 << 22);
  check_range(path, "n_layers", h.n_layers, 1, 4096);
  check_range(path, "n_heads", h.n_heads, 1, h.dim);
  check_range(path, "n_kv_heads", h.n_kv_heads, 1, h.n_heads);
  check_range(path, "vocab_size", h.vocab_size, 1, 1 << 22);
  check_range(path, "seq_len", h.seq_len, 1, 1 << 24);
  if (h.dim % h.n_heads != 0)
    fail(path, "n_heads", fmt::format("a divisor of dim {}", h.dim), std::to_string(h.n_heads));
  if (h.n_heads % h.n_kv_heads != 0)
    fail(path, "n_kv_heads", fmt::format("a divisor of n_heads {}", h.n_heads),
         std::to_string(h.n_kv_heads));
  const uint64_t head_dim = h.dim / h.n_heads;
  if (head_dim % 2 != 0)
    fail(path, "n_heads", "a head size (dim / n_heads) that is even", std::to_string(head_dim));

  auto& p = src.params;
  p.dim = h.dim;
  p.hidden_dim = h.hidden_dim;
  p.n_layers = h.n_layers;
  p.n_heads = h.n_heads;
  p.n_kv_heads = h.n_kv_heads;
  p.vocab_size = h.vocab_size;
  p.context_length = h.seq_len;
  p.rope_dim = head_dim;
  p.rope_base = 10000.0;
  p.rms_eps = 1e-5;

  const uint64_t dim = h.dim, hidden = h.hidden_dim, kv_dim = head_dim * h.n_kv_heads;
  const uint64_t vocab = h.vocab_size;
  const int64_t L = h.n_layers;
  auto blk = [](const char* what) {
    return [what](int64_t i) { return fmt::format("blk.{}.{}.weight", i, what); };
  };
  Layout lay(src, data, size, r.offset());
  auto embedding = [&] { lay.stacked(1, {vocab, dim}, [](int64_t) { return std::string("token_embd.weight"); }); };
  auto final_norm = [&] { lay.stacked(1, {dim}, [](int64_t) { return std::string("output_norm.weight"); }); };
  if (v1) {
    lay.stacked(L, {dim}, blk("attn_norm"));
    lay.stacked(L, {dim}, blk("ffn_norm"));
    final_norm();
    embedding();
  } else {
    embedding();
    lay.stacked(L, {dim}, blk("attn_norm"));
  }
  lay.stacked(L, {dim, dim}, blk("attn_q"));
  lay.stacked(L, {kv_dim, dim}, blk("attn_k"));
  lay.stacked(L, {kv_dim, dim}, blk("attn_v"));
  lay.stacked(L, {dim, dim}, blk("attn_output"));
  if (!v1) lay.stacked(L, {dim}, blk("ffn_norm"));
  lay.stacked(L, {hidden, dim}, blk("ffn_gate"));   // w1
  lay.stacked(L, {dim, hidden}, blk("ffn_down"));   // w2
  lay.stacked(L, {hidden, dim}, blk("ffn_up"));     // w3
  if (!v1) {
    final_norm();
    // Precomputed RoPE tables (freq_cis_real, freq_cis_imag) that llama2.c
    // no longer uses; we compute RoPE ourselves.
    lay.skip(uint64_t(h.seq_len) * head_dim * 4, "freq_cis tables");
  }
  if (!shared_classifier)
    lay.stacked(1, {vocab, dim}, [](int64_t) { return std::string("output.weight"); });
  // The header fixes every size, so bytes left over mean it does not describe
  // these weights (e.g. n_layers too small): they would be misread silently.
  if (lay.offset() != size)
    fail(path, "size",
         fmt::format("{} bytes for the header's dim, hidden_dim, n_layers, n_kv_heads, vocab_size and seq_len",
                     lay.offset()),
         fmt::format("{} bytes (the header does not match the weights)", size));
  return src;
}

ModelSource load_llama2c(const std::string& path) {
  auto file = std::make_shared<MappedFile>(path);
  const uint8_t* data = file->data();
  const size_t size = file->size();
  return load_llama2c(data, size, path, std::move(file));
}

TokenizerData load_llama2c_tokenizer(const uint8_t* data, size_t size, const std::string& path,
                                     uint64_t vocab_size) {
  ByteReader r(data, size, path);
  TokenizerData tok;
  tok.model = "llama";
  const int32_t max_len = r.read<int32_t>("max_token_length");
  if (max_len <= 0 || max_len > 4096)
    fail(path, "max_token_length", "1..4096", std::to_string(max_len));
  if (vocab_size > size / 8)
    fail(path, "vocabulary", fmt::format("{} tokens (the model's vocab_size)", vocab_size),
         fmt::format("a file of only {} bytes", size));
  tok.tokens.reserve(vocab_size);
  tok.scores.reserve(vocab_size);
  for (uint64_t i = 0; i < vocab_size; ++i) {
    const std::string field = fmt::format("token {}", i);
    tok.scores.push_back(r.read<float>(field.c_str()));
    const int32_t len = r.read<int32_t>(field.c_str());
    if (len < 0 || len > max_len)
      fail(path, field + " length", fmt::format("0..{} (max_token_length)", max_len), std::to_string(len));
    std::string piece(r.bytes(static_cast<uint64_t>(len), field.c_str()));
    // llama2.c's export turned SentencePiece's "▁" into a plain space; turn it
    // back so that every tokenizer shares one convention.
    std::string normalized;
    for (char c : piece) {
      if (c == ' ') normalized += "\xe2\x96\x81";
      else normalized += c;
    }
    tok.tokens.push_back(std::move(normalized));
  }
  if (r.remaining() != 0)
    fail(path, "size", fmt::format("exactly {} tokens (the model's vocab_size)", vocab_size),
         fmt::format("{} bytes left after them", r.remaining()));
  // Types: llama2.c keeps <unk>, BOS and EOS at ids 0, 1, 2 (stored as
  // "\n<s>\n" and "\n</s>\n"), and <0xNN> byte tokens; mark them so that
  // decoding prints them as SentencePiece does.
  tok.types.assign(vocab_size, TokenType::Normal);
  for (uint64_t i = 0; i < vocab_size; ++i)
    if (has_byte_token_shape(tok.tokens[i])) tok.types[i] = TokenType::Byte;
  for (uint64_t i = 0; i < vocab_size && i < 3; ++i)
    tok.types[i] = i == 0 ? TokenType::Unknown : TokenType::Control;
  if (vocab_size > 2 && tok.tokens[1] == "\n<s>\n") tok.tokens[1] = "<s>";
  if (vocab_size > 2 && tok.tokens[2] == "\n</s>\n") tok.tokens[2] = "</s>";
  return tok;
}

TokenizerData load_llama2c_tokenizer(const std::string& path, uint64_t vocab_size) {
  MappedFile file(path);
  return load_llama2c_tokenizer(file.data(), file.size(), path, vocab_size);
}

}  // namespace ffn
