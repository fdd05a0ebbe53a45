#include "transform/ffn_transform.h"

#include <algorithm>

#include "core/error.h"
#include "model/llama_model.h"
#include "transform/dense_to_moe.h"
#include "transform/ffn_activations.h"
#include "transform/upcycle.h"

namespace ffn {

bool is_ffn_transform(const std::string& step) {
  return step.rfind("moe:", 0) == 0 || step.rfind("upcycle:", 0) == 0 || step == "average";
}

bool ffn_transform_needs_calibration(const std::string& step, const std::string& what) {
  if (step.rfind("moe:", 0) == 0) {
    parse_moe_conversion(step, what);
    return true;
  }
  if (step.rfind("upcycle:", 0) == 0) {
    parse_upcycle(step, what);
    return false;
  }
  if (step == "average") return false;
  fail(what, "value", "moe:..., upcycle:... or average", "\"" + step + "\"");
}

ModelSource transform_ffn(const ModelSource& src, const LlamaModel& model, const std::string& step,
                          const FfnActivations* acts, ThreadPool& pool) {
  if (step.rfind("moe:", 0) == 0) {
    const MoeConversionSpec spec = parse_moe_conversion(step);
    if (!acts) throw Error(step + ": needs calibration text (--calib) to split neurons and fit routers");
    return dense_to_moe(src, model, *acts, spec, pool);
  }
  if (step.rfind("upcycle:", 0) == 0) return upcycle(src, model, parse_upcycle(step));
  if (step == "average") return average_experts(src, model);
  fail("--ffn", "value", "moe:..., upcycle:... or average", "\"" + step + "\"");
}

int64_t ffn_calibration_tokens(const LlamaModel& model, int64_t wanted) {
  const auto& c = model.config();
  const int64_t per_token = 4 * (c.dim + c.hidden_dim) * c.n_layers;
  return std::min(wanted, std::max<int64_t>(256, (int64_t(1) << 30) / per_token));
}

}  // namespace ffn
