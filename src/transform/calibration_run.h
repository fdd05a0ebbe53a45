// Running a calibration text through a model with an activation observer:
// the token stream in windows of `ctx` (each [BOS] + ctx - 1 tokens from an
// empty cache, as the perplexity protocol does), the observer attached for
// the run and detached however it ends. Shared by the activation statistics
// (sparsity thresholds) and the recorded FFN activations (dense -> MoE).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace ffn {

class ActivationObserver;
class LlamaModel;
class ThreadPool;

// Runs tokens[0 .. min(max_tokens, tokens.size())). after_window(done,
// total, window) is called after each window of `window` tokens (BOS
// included). Throws ffn::Error for ctx < 2 or no tokens.
void run_calibration(LlamaModel& model, ActivationObserver& observer, const std::vector<int32_t>& tokens, int32_t bos,
                     int64_t ctx, int64_t max_tokens, ThreadPool& pool,
                     const std::function<void(int64_t done, int64_t total, int64_t window)>& after_window = {});

}  // namespace ffn
