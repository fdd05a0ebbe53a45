#include "transform/calibration_run.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/llama_model.h"

namespace ffn {

void run_calibration(LlamaModel& model, ActivationObserver& observer, const std::vector<int32_t>& tokens, int32_t bos,
                     int64_t ctx, int64_t max_tokens, ThreadPool& pool,
                     const std::function<void(int64_t, int64_t, int64_t)>& after_window) {
  if (ctx < 2) throw Error(fmt::format("calibration: context {} too small (need at least 2)", ctx));
  const int64_t total = std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size()));
  if (total < 1) throw Error("calibration: the text has no tokens");
  model.set_observer(&observer);
  KvCache cache = model.make_cache(ctx);
  Tensor logits;
  std::vector<int32_t> window;
  try {
    for (int64_t done = 0; done < total;) {
      const int64_t n = std::min(ctx - 1, total - done);
      window.assign(1, bos);
      window.insert(window.end(), tokens.begin() + done, tokens.begin() + done + n);
      cache.clear();
      model.forward(window.data(), static_cast<int64_t>(window.size()), cache, logits, false, pool);
      done += n;
      if (after_window) after_window(done, total, n + 1);
    }
  } catch (...) {
    model.set_observer(nullptr);
    throw;
  }
  model.set_observer(nullptr);
}

}  // namespace ffn
