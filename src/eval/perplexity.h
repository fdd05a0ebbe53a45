// Perplexity with the project's fixed protocol (later tools and external
// checks rely on it):
//   1. the text is encoded as ONE token stream (normal encoding: dummy
//      prefix once at the start, no BOS inside);
//   2. the stream is cut into consecutive windows of ctx-1 tokens (the last
//      may be shorter);
//   3. each window runs as [BOS] + window from an empty KV cache;
//   4. every window token is scored, predicted from the tokens before it.
// Reported: tokens scored, mean negative log-likelihood (nats), exp(NLL).
//
// With a reference model (the dense original of a variant) the same windows
// also run through the reference, and each position's next-token
// distributions are compared: mean KL(reference || model) in nats and the
// fraction of positions whose most likely token agrees.
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
  // Only with a reference model:
  double kl = 0;           // mean KL(reference || model), nats
  double top1_agree = 0;   // fraction of positions with the same argmax
};

// progress(tokens_done, tokens_total) is called after each window.
// max_tokens > 0 scores only the first max_tokens tokens of the stream.
PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& stream, int32_t bos,
                            int64_t ctx, ThreadPool& pool,
                            const std::function<void(int64_t, int64_t)>& progress = {},
                            LlamaModel* reference = nullptr, int64_t max_tokens = 0);

}  // namespace ffn
