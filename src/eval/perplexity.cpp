#include "eval/perplexity.h"

#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "model/llama_model.h"

namespace ffn {

PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& stream, int32_t bos,
                            int64_t ctx, ThreadPool& pool,
                            const std::function<void(int64_t, int64_t)>& progress) {
  if (ctx < 2) throw Error("perplexity: --ctx must be at least 2, got " + std::to_string(ctx));
  if (stream.empty()) throw Error("perplexity: the text encodes to no tokens");
  KvCache cache = model.make_cache(ctx);
  Tensor logits;
  std::vector<int32_t> window;
  double total_nll = 0;
  const int64_t n = static_cast<int64_t>(stream.size());
  const int64_t vocab = model.config().vocab_size;
  for (int64_t start = 0; start < n; start += ctx - 1) {
    const int64_t len = std::min(ctx - 1, n - start);
    window.assign(1, bos);
    window.insert(window.end(), stream.begin() + start, stream.begin() + start + len);
    cache.clear();
    model.forward(window.data(), static_cast<int64_t>(window.size()), cache, logits, true, pool);
    for (int64_t i = 0; i < len; ++i) {
      // logits row i predicts window[i + 1] = stream[start + i]
      const float* row = logits.row(i);
      float mx = row[0];
      for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, row[v]);
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - mx);
      total_nll += (std::log(sum) + mx) - row[window[i + 1]];
    }
    if (progress) progress(start + len, n);
  }
  PerplexityResult r;
  r.tokens = n;
  r.nll = total_nll / double(n);
  r.ppl = std::exp(r.nll);
  return r;
}

}  // namespace ffn
