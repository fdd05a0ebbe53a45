// Shared pieces of the libFuzzer targets (one per loader, see README.md).
//
// Contract under test: whatever the bytes, a loader either returns or throws
// ffn::Error. Each target catches ffn::Error and nothing else, so any other
// exception, a crash, a sanitizer report or a leak is a finding.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "io/model_source.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "model/sparsity_plan.h"
#include "model/tokenizer.h"

namespace ffn::fuzz {

// Weights a config implies, in bytes of fp32. Building a LlamaModel (and
// running it) allocates in proportion to this: matrices of other types are
// decoded or copied, activations and logits are sized by dim and vocab_size.
// Every tensor must lie inside the input, so today this is bounded by the
// input size anyway; the cap keeps the fuzzer from running out of memory
// should a loader ever synthesise weights. Computed in double: the params
// are unchecked here and their products may overflow 64 bits.
inline bool small_enough(const LlamaParams& p) {
  const double d = double(p.dim), h = double(p.hidden_dim), layers = double(p.n_layers);
  const double v = double(p.vocab_size);
  const double kv = p.n_heads ? d / double(p.n_heads) * double(p.n_kv_heads) : d;
  const double floats = layers * (2 * d + 2 * d * d + 2 * kv * d + 3 * h * d) + 2 * v * d + d;
  return floats * 4 <= 64.0 * 1024 * 1024;
}

// Reads the first and last byte of every tensor view, so that ASan checks
// the ranges the loader handed out.
inline void touch(const ModelSource& src) {
  volatile uint8_t sink = 0;
  for (const auto& t : src.tensors) {
    if (t.bytes == 0) continue;
    sink = sink ^ t.data[0] ^ t.data[t.bytes - 1];
  }
  (void)sink;
}

// Builds the model (which checks every tensor's presence and shape) and runs
// one token through it.
inline void run_model(const ModelSource& src) {
  touch(src);
  if (!small_enough(src.params)) return;
  LlamaModel model(src);
  static ThreadPool pool(1);
  // A file may carry an activation-sparsity plan (ffn.sparsity.* keys and
  // transposed matrices): read and apply it as load_model does.
  std::unique_ptr<SparsityMeter> sparsity;
  if (const auto plan = read_sparsity_plan(src, model.config())) sparsity = apply_sparsity(model, *plan, &pool);
  // A 2-token prefill (batched paths: grouped expert dispatch) and a decode
  // step (one-token paths).
  KvCache cache = model.make_cache(3);
  Tensor logits;
  const int32_t tokens[2] = {0, 0};
  model.forward(tokens, 2, cache, logits, false, pool);
  model.forward(tokens, 1, cache, logits, false, pool);
  if (logits.rows != 1 || logits.cols != model.config().vocab_size) std::abort();
}

// Builds a Tokenizer (which validates ids and byte tokens) and encodes and
// decodes a few awkward strings; every id produced must be in the vocabulary.
inline void exercise_tokenizer(const TokenizerData& data, const std::string& where) {
  const Tokenizer tok(data, where);
  static const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily.",
      "  two  spaces\nand\ttabs <s> </s> <0x41> <unk>",
      std::string("\xe2\x96\x81 \xff\xfe\xc3 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 caf\xc3\xa9"),
      std::string("\0nul\0", 5),
      "",
  };
  for (const auto& text : texts) {
    const std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    (void)tok.decode(ids);
  }
  for (int32_t id = -1; id <= tok.vocab_size() && id < 1024; ++id) (void)tok.piece(id);
}

}  // namespace ffn::fuzz
