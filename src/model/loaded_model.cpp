#include "model/loaded_model.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/sparsity_plan.h"

namespace ffn {

const Tokenizer& LoadedModel::require_tokenizer() const {
  if (!tokenizer && !source.tokenizer_unsupported.empty())
    fail(source.path, "tokenizer", "a supported tokenizer (or one given with -z)", source.tokenizer_unsupported);
  if (!tokenizer)
    fail(source.path, "tokenizer", "a tokenizer in the model file or given with -z",
         "none (llama2.c checkpoints need -z tokenizer.bin)");
  return *tokenizer;
}

LoadedModel load_model(const std::string& path, const std::string& tokenizer_path) {
  LoadedModel m;
  m.source = load_model_source(path, tokenizer_path);
  m.model = std::make_unique<LlamaModel>(m.source);
  if (const auto plan = read_sparsity_plan(m.source, m.model->config())) {
    m.sparsity = apply_sparsity(*m.model, *plan, &ThreadPool::global());
    m.sparsity_spec = fmt::format("{}:{:g}", sparsity_method_name(plan->spec.method), plan->spec.target);
  } else if (m.model->needs_sparsity_plan()) {
    fail(path, "ffn.sparsity.method", "a sparsity plan (the file stores transposed matrices)", "none");
  }
  if (m.source.tokenizer) {
    const std::string where = tokenizer_path.empty() ? path : tokenizer_path;
    m.tokenizer.emplace(*m.source.tokenizer, where);
    if (m.tokenizer->vocab_size() != m.model->config().vocab_size)
      fail(where, "vocabulary size", fmt::format("{} (the model's)", m.model->config().vocab_size),
           std::to_string(m.tokenizer->vocab_size()));
  }
  return m;
}

}  // namespace ffn
