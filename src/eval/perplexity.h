// Perplexity with the project's fixed protocol (later tools and external
// checks rely on it):
//   1. the text is encoded as ONE token stream (normal encoding: dummy
//      prefix once at the start, no BOS inside);
//   2. the stream is cut into consecutive windows of ctx-1 tokens (the last
//      may be shorter);
//   3. each window runs as [BOS] + window from an empty KV cache;
//   4. every window token is scored, predicted from the tokens before it.
// Reported: tokens scored, mean negative log-likelihood (nats), exp(NLL).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace ffn {

class LlamaModel;
class ThreadPool;

struct PerplexityResult {
  int64_t tokens = 0;
  double nll = 0;  // mean, nats
  double ppl = 0;
};

// progress(tokens_done, tokens_total) is called after each window.
PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& stream, int32_t bos,
                            int64_t ctx, ThreadPool& pool,
                            const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace ffn
