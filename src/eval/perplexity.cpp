#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "model/llama_model.h"

namespace ffn {

namespace {

// log-sum-exp of one row of logits.
double log_normalizer(const float* row, int64_t vocab) {
  const float mx = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - mx);
  return std::log(sum) + mx;
}

}  // namespace

PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& stream, int32_t bos,
                            int64_t ctx, ThreadPool& pool,
                            const std::function<void(int64_t, int64_t)>& progress, LlamaModel* reference,
                            int64_t max_tokens) {
  if (ctx < 2) throw Error("perplexity: --ctx must be at least 2, got " + std::to_string(ctx));
  if (stream.empty()) throw Error("perplexity: the text encodes to no tokens");
  const int64_t vocab = model.config().vocab_size;
  if (reference && reference->config().vocab_size != vocab)
    throw Error("perplexity: the reference model has a different vocabulary size");
  KvCache cache = model.make_cache(ctx);
  KvCache ref_cache = reference ? reference->make_cache(ctx) : KvCache(0, 0, 0);
  Tensor logits, ref_logits;
  std::vector<int32_t> window;
  double total_nll = 0, total_kl = 0;
  int64_t agree = 0;
  const int64_t n = max_tokens > 0 ? std::min<int64_t>(max_tokens, static_cast<int64_t>(stream.size()))
                                   : static_cast<int64_t>(stream.size());
  for (int64_t start = 0; start < n; start += ctx - 1) {
    const int64_t len = std::min(ctx - 1, n - start);
    window.assign(1, bos);
    window.insert(window.end(), stream.begin() + start, stream.begin() + start + len);
    cache.clear();
    model.forward(window.data(), static_cast<int64_t>(window.size()), cache, logits, true, pool);
    if (reference) {
      ref_cache.clear();
      reference->forward(window.data(), static_cast<int64_t>(window.size()), ref_cache, ref_logits, true, pool);
    }
    for (int64_t i = 0; i < len; ++i) {
      // logits row i predicts window[i + 1] = stream[start + i]
      const float* row = logits.row(i);
      const double lz = log_normalizer(row, vocab);
      total_nll += lz - row[window[i + 1]];
      if (!reference) continue;
      const float* ref = ref_logits.row(i);
      const double rz = log_normalizer(ref, vocab);
      double kl = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        const double lp_ref = ref[v] - rz, lp = row[v] - lz;
        kl += std::exp(lp_ref) * (lp_ref - lp);
      }
      total_kl += std::max(0.0, kl);
      agree += std::max_element(row, row + vocab) == row + (std::max_element(ref, ref + vocab) - ref);
    }
    if (progress) progress(start + len, n);
  }
  PerplexityResult r;
  r.tokens = n;
  r.nll = total_nll / double(n);
  r.ppl = std::exp(r.nll);
  if (reference) {
    r.kl = total_kl / double(n);
    r.top1_agree = double(agree) / double(n);
  }
  return r;
}

}  // namespace ffn
